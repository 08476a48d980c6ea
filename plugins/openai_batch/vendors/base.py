"""The vendor adapter interface: the only place that knows a batch vendor's API.

Everything above it (split, ledger, claims, attempts, triggers, collect, merge, load, report) is vendor-neutral
and speaks two shapes:

- a batch is an ``openai.types.Batch`` (status ``validating`` ... ``completed``/``expired``/``cancelled``/``failed``,
  ``request_counts`` total/completed/failed, UNIX times): an adapter maps its vendor's batch object onto it;
- results are OpenAI batch output lines, ``{"custom_id", "response": {"status_code", "body"}, "error"}``, with a
  ``chat.completion`` (or ``response``/``list``) body for a 200: an adapter's ``download`` writes them so.

Requests are the split's OpenAI-shaped JSONL lines (their fingerprints never depend on the vendor); an adapter
converts them when it submits (``check_request`` converts one sample line before any work, so a request the
vendor cannot take fails the split, not the batch).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from batchkit.batch_api import ENDPOINTS
from batchkit.errors import InputError
from openai_batch.vendors.errors import CreateRefused, Gone, LookupPending, ModelMissing

if TYPE_CHECKING:
    from openai.types import Batch

__all__ = ["BatchVendor", "CreateRefused", "Gone", "Limits", "LookupPending", "ModelMissing", "create_once"]

LOOKUP_MARGIN = 300  # seconds before a claim that a batch created under it may carry (clock skew)
LOOKUP_WAIT_SECONDS = 60.0  # how long a lost create's lookup asks again, in place, while it cannot tell yet


@dataclass(frozen=True)
class Limits:
    """What a vendor allows per batch and how its batches behave.

    :param max_requests: requests per batch (the split cuts files there).
    :param max_bytes: bytes per batch (the split's JSONL file; Anthropic: its create body).
    :param custom_id: the pattern a ``custom_id`` must match (None: any string); the adapter maps ours onto it.
    :param completion_windows: the windows a batch may be created with (empty: the vendor has none).
    :param expires: batches end at their window (their unfinished lines expire); False: they run until done.
    :param max_runtime: for batches that never expire, how long the pipeline waits before it cancels one.
    :param queue_full: how the vendor refuses a batch for its queue or rate limits (documentation).
    :param embeddings: the vendor runs ``/v1/embeddings`` batches.
    :param metadata: batches carry our metadata (the ``batchkit_key``), which finds a lost create.
    :param endpoints: the request endpoints the split may write for this vendor.
    :param lifetimes: the seconds ``expires_after`` (input files) and ``output_expires_after`` (output and error
        files) may take at this vendor; None: it has neither (its batches leave no files).
    """

    max_requests: int
    max_bytes: int
    custom_id: str | None = None
    completion_windows: tuple[str, ...] = ("24h",)
    expires: bool = True
    max_runtime: timedelta | None = None
    queue_full: str = ""
    embeddings: bool = True
    metadata: bool = True
    endpoints: tuple[str, ...] = ENDPOINTS
    lifetimes: tuple[int, int] | None = (3600, 2_592_000)  # OpenAI's: 1 hour to 30 days


class BatchVendor(ABC):
    """One vendor's Batch API behind the pipeline. Instances are cheap; clients are built on first use.

    Worker side (sync): ``check_model``, ``check_request``, ``submit``, ``get_batch``, ``cancel_batch``,
    ``iter_batches_since``, ``find_batch``, ``download``, ``forget``. Triggerer side (async, one shared client per
    connection and event loop, see ``polling``): ``aclient``, ``status_path``, ``batch_view``, ``araw_status``,
    ``acancel``.

    :param conn_id: the Airflow connection.
    :param conn: the connection, and ``extra`` its extra, when the caller already read them.
    """

    name: ClassVar[str]  # the registry's name, e.g. "openai"
    title: ClassVar[str]  # for people: "OpenAI", "Azure OpenAI", "Anthropic"
    conn_types: ClassVar[tuple[str, ...]] = ()  # Airflow connection types that mean this vendor
    limits: ClassVar[Limits]
    price_vendor: ClassVar[str] = "openai"  # whose batch prices apply (batchkit.cost: openai, anthropic, azure)

    def __init__(self, conn_id: str, conn: Any | None = None, extra: dict[str, Any] | None = None) -> None:
        self.conn_id, self._conn, self._extra = conn_id, conn, extra

    @property
    def connection(self) -> Any:
        if self._conn is None:
            from airflow.sdk import BaseHook

            self._conn = BaseHook.get_connection(self.conn_id)
        return self._conn

    @property
    def extra(self) -> dict[str, Any]:
        if self._extra is None:
            self._extra = dict(self.connection.extra_dejson or {})
        return self._extra

    # Before any work
    @abstractmethod
    def check_model(self, model: str) -> None:
        """:raises ModelMissing: the model does not exist here (a vendor that cannot tell returns)."""

    def check_request(self, line: dict[str, Any]) -> None:
        """Convert one request line as ``submit`` will, so what the vendor cannot take fails before any work.

        :raises InputError: with what to change.
        """
        endpoint = line.get("url")
        if endpoint not in self.limits.endpoints:
            raise InputError(
                f"{self.title} batches do not run {endpoint}; use one of {', '.join(self.limits.endpoints)}"
            )

    # Batches
    @abstractmethod
    def submit(
        self,
        key: str,
        path: str,
        *,
        requests: int,
        endpoint: str,
        owned: Callable[[], set[str]] | None = None,
        pending: Callable[[], bool] | None = None,
        **create: Any,
    ) -> Batch:
        """Send the request file at ``path`` (local or remote, streamed) as a batch tagged with ``key``, created
        at most once (``create_once``).

        :param requests: the file's request count, ``owned`` and ``pending`` as for ``find_batch`` (the
            lost-create lookup of a vendor without metadata uses them).
        :param create: ``completion_window``, ``metadata``, and ``lifetimes`` (``retention.Lifetimes``: the input
            file's ``expires_after`` and the batch's ``output_expires_after``, see ``expiry``): used where the
            vendor has them.
        :raises CreateRefused: the vendor refused for its rate or queue limits.
        """

    @abstractmethod
    def get_batch(self, batch_id: str) -> Batch:
        """:raises Gone: the vendor has no such batch (any more)."""

    @abstractmethod
    def cancel_batch(self, batch_id: str) -> Any: ...

    @abstractmethod
    def iter_batches_since(self, created_after: int) -> Iterator[Batch]:
        """Batches newest first, stopping at the first one created before ``created_after`` (a UNIX time)."""

    @abstractmethod
    def find_batch(
        self,
        key: str,
        since: float,
        *,
        requests: int | None = None,
        owned: Callable[[], set[str]] | None = None,
        pending: Callable[[], bool] | None = None,
    ) -> Batch | None:
        """The batch created under ``key`` after ``since`` (the claim's time), found without its create's answer.

        :param requests: the file's request count; ``owned``: batch ids other claims of the ledger name;
            ``pending``: whether another claim is creating its batch right now (all three for vendors without
            metadata; one lookup asks ``owned`` first, ``pending`` answers from the same read).
        :returns: the batch, or None when none can be it (the caller may create it).
        :raises LookupPending: a batch may be it but cannot be told apart yet.
        """

    @abstractmethod
    def download(self, batch: Batch, folder: Path, name: str, requests_file: str, key: str) -> list[tuple[str, Path]]:
        """Write a terminal batch's results as OpenAI output lines: ``[("outputs", path), ("errors", path)]`` under
        ``folder/<kind>/<name>`` (either may be missing).

        :param requests_file: the batch file the split wrote (attempt 1's), ``key`` the batch's key: for vendors
            that map custom_ids.
        :raises Gone: the results are not there any more (deleted or expired).
        """

    def download_input(self, batch: Batch, path: Path) -> Path:
        """The input file of a batch refused for the queue limit (OpenAI and Azure only: others refuse the create).

        :raises Gone: the file is not there any more."""
        raise NotImplementedError(f"{self.title} batches have no input file")

    def forget(self, batch: Batch, log: Any) -> list[str]:
        """Delete what the vendor still holds of a terminal batch whose answers the ledger has recorded: its input,
        output and error files (OpenAI, Azure), or the batch with its results (Anthropic). What is already gone
        (404) counts as deleted; a deletion the vendor refuses is logged on ``log`` as a warning and skipped.

        :returns: what was deleted, for the log (empty: the vendor keeps nothing to delete).
        """
        return []

    def expiry(self, lifetime: timedelta | None, log: Any = None) -> dict[str, Any] | None:
        """``{"anchor": "created_at", "seconds": N}`` for ``lifetime``, moved into the vendor's range
        (``Limits.lifetimes``; said on ``log``); None when none is asked or the vendor has no such setting."""
        if lifetime is None or self.limits.lifetimes is None:
            return None
        asked = int(lifetime.total_seconds())
        low, high = self.limits.lifetimes
        seconds = min(max(asked, low), high)
        if seconds != asked and log is not None:
            days = (low / 86400, high / 86400, asked / 86400, seconds / 86400)
            log.info("%s keeps files %g to %g days: %g days asked, %g used", self.title, *days)
        return {"anchor": "created_at", "seconds": seconds}

    def batch_url(self, batch_id: str) -> str:
        """Where a person looks at the batch (the task's link); empty: nowhere."""
        return ""

    def deadline(self, created_at: float, window: timedelta) -> float | None:
        """When the pipeline stops waiting for a batch and cancels it (a UNIX time): its window + 1 h, or for
        batches that never expire, their ``max_runtime`` (None: never)."""
        if self.limits.expires:
            return created_at + (window + timedelta(hours=1)).total_seconds()
        runtime = self.limits.max_runtime
        return None if runtime is None else created_at + runtime.total_seconds()

    # Triggerer side
    @abstractmethod
    async def aclient(self) -> Any:
        """A new async SDK client of the connection (the caller closes it)."""

    @abstractmethod
    def status_path(self, batch_id: str) -> str:
        """The batch's GET path relative to the client's base URL."""

    def batch_view(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The vendor's batch JSON as an OpenAI batch's JSON (status, request_counts, UNIX times)."""
        return raw

    @abstractmethod
    async def araw_status(self, client: Any, batch_id: str) -> bytes:
        """The batch's JSON through the SDK (clients whose auth is not a static header)."""

    @abstractmethod
    async def acancel(self, client: Any, batch_id: str) -> None: ...


def create_once(
    create: Callable[[], Batch],
    find: Callable[[float], Batch | None],
    transient: tuple[type[BaseException], ...],
    log: Any,
    attempts: int = 3,
) -> Batch:
    """Create a batch without ever creating two.

    An SDK retries a POST that timed out or got a 5xx, but the first request may have created the batch already:
    each automatic retry could bill the same requests again. Here ``create`` must not retry; after a ``transient``
    failure ``find(started)`` looks for the batch first, and the create is repeated only if none is found. A few
    quick attempts only: a longer refusal (429) is the caller's to wait out without holding a worker.
    """
    started = time.time()
    for attempt in range(1, attempts + 1):
        try:
            return create()
        except transient as exc:
            log.warning("creating the batch failed (%s); checking whether it exists before retrying", type(exc).__name__)
            time.sleep(2 ** (attempt - 1))  # 1, 2, 4 s: longer refusals are waited out on the triggerer
            found = _look(find, started, log)
            if found:
                log.info("the batch was created despite the error: adopting %s", found.id)
                return found
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _look(find: Callable[[float], Batch | None], started: float, log: Any) -> Batch | None:
    """``find(started)``, asked again every 2 s while it cannot tell yet (``LookupPending``), for a while."""
    deadline = time.monotonic() + LOOKUP_WAIT_SECONDS
    while True:
        try:
            return find(started)
        except LookupPending as exc:
            if time.monotonic() > deadline:
                raise
            log.info("%s; looking again in 2 s", exc)
            time.sleep(2)
