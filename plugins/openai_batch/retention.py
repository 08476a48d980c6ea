"""What the pipeline leaves at the batch vendor, and for how long (README "Retention at the vendor").

- Every input file is uploaded with ``expires_after`` and every batch is created with ``output_expires_after``
  (its output and error files): ``Lifetimes``, never shorter than a batch's completion window + the collect grace,
  so nothing outlives its purpose even when a run never finishes.
- Once collect has recorded a batch's answers in the ledger, ``forget`` deletes what the vendor still holds of it
  (``BatchVendor.forget``), unless the deployment keeps it; a failure is a warning, never a failed run.
- A batch the vendor no longer has (a deleted Anthropic message batch) is stood in for by what the ledger recorded
  of it (``batch_or_recorded``): a retry, a clear or another run following it never needs it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openai.types import Batch

    from batchkit.ledger import Ledger
    from openai_batch.vendors.base import BatchVendor

WINDOW = timedelta(hours=24)  # the completion window every batch is created with
COLLECT_GRACE = timedelta(hours=1)  # the deadline's hour after the window (``attempts.CANCEL_GRACE``)
SHORTEST = WINDOW + COLLECT_GRACE
LONGEST = timedelta(days=30)  # the most OpenAI and Azure accept
DEFAULT = timedelta(days=7)


def check_lifetime(name: str, value: timedelta | float | None) -> timedelta | None:
    """``value`` (a timedelta or seconds; None: the vendor's own default) when it is a lifetime files may have.

    :raises ValueError: naming ``name``, when files could expire before collect records their answers, or when
        the vendors would refuse every upload.
    """
    if value is None:
        return None
    lifetime = value if isinstance(value, timedelta) else timedelta(seconds=float(value))
    days = lifetime.total_seconds() / 86400
    if lifetime < SHORTEST:
        raise ValueError(
            f"{name} is {days:g} days: shorter than a batch's completion window ({_hours(WINDOW)}) plus the collect "
            f"grace ({_hours(COLLECT_GRACE)}), so the vendor could delete the files before collect records their "
            f"answers; set at least {_hours(SHORTEST)} ({SHORTEST.total_seconds() / 86400:.3f} days), or none for "
            "the vendor's default"
        )
    if lifetime > LONGEST:
        raise ValueError(f"{name} is {days:g} days: the vendors accept at most {LONGEST.days} days")
    return lifetime


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g} h"


@dataclass(frozen=True)
class Lifetimes:
    """How long the vendor keeps what a batch leaves there.

    :param files: the uploaded input files (``expires_after``; None: the vendor's default).
    :param outputs: the batch's output and error files (``output_expires_after``; None: the vendor's default).
    :param keep: keep everything once the answers are recorded (until it expires); False: delete it then.
    """

    files: timedelta | None = DEFAULT
    outputs: timedelta | None = DEFAULT
    keep: bool = False

    def __post_init__(self) -> None:
        check_lifetime("the input files' lifetime (expires_after)", self.files)
        check_lifetime("the output files' lifetime (output_expires_after)", self.outputs)


def as_lifetime(value: timedelta | dict[str, Any] | float | None) -> timedelta | None:
    """A lifetime given as a timedelta, seconds, or the API's ``{"anchor": "created_at", "seconds": N}``."""
    if isinstance(value, dict):
        return timedelta(seconds=int(value["seconds"]))
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value))


def forget(vendor: BatchVendor, batch: Batch, log: Any) -> None:
    """Delete what ``vendor`` still holds of ``batch``, whose answers the ledger has just recorded. A failure is
    logged as a warning: the answers are safe, and what was not deleted expires on its own."""
    try:
        deleted = vendor.forget(batch, log)
    except Exception as exc:  # any SDK or transport error: nothing may fail a run whose answers are recorded
        log.warning(
            "could not delete what %s holds of batch %s (%s: %s); it expires on its own",
            vendor.title,
            batch.id,
            type(exc).__name__,
            exc,
        )
        return
    if deleted:
        log.info(
            "deleted %s of batch %s at %s: its answers are in the ledger", ", ".join(deleted), batch.id, vendor.title
        )


def delete_each(
    vendor: str, deletes: dict[str, Callable[[], Any]], gone: tuple[type[BaseException], ...], log: Any
) -> list[str]:
    """Run each deletion of ``deletes`` (what -> how) at ``vendor`` (its title); ``gone``: the SDK's 404 errors
    (deleted or expired already: fine). A refused deletion is a warning, and the next one still runs.

    :returns: what is gone now."""
    deleted = []
    for what, delete in deletes.items():
        try:
            delete()
        except gone:
            pass
        except Exception as exc:  # the SDK's other errors: best effort, the answers are recorded
            log.warning(
                "could not delete %s at %s (%s: %s); it expires on its own", what, vendor, type(exc).__name__, exc
            )
            continue
        deleted.append(what)
    return deleted


def batch_or_recorded(vendor: BatchVendor, ledger: Ledger, batch_id: str, requests_file: str = "") -> Batch:
    """The batch as the vendor has it, or, when the vendor no longer has it (deleted once recorded), a stand-in
    from what the ledger recorded of it: terminal, with its request counts.

    :param requests_file: the batch file (its first request names the endpoint of the stand-in).
    :raises AirflowFailException: the vendor has no such batch and the ledger none of its answers.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from openai_batch.vendors.base import Gone

    try:
        return vendor.get_batch(batch_id)
    except Gone:
        if not ledger.has_results(batch_id):
            raise AirflowFailException(
                f"batch {batch_id} no longer exists at {vendor.title} and the ledger ({ledger.root}) holds none of "
                "its answers: it was deleted or expired before it was recorded"
            ) from None
    return recorded_batch(ledger, batch_id, _endpoint_of(requests_file))


def recorded_batch(ledger: Ledger, batch_id: str, endpoint: str) -> Batch:
    """A terminal batch as the ledger recorded it: ``cancelled`` or ``expired`` when some of its lines were, else
    ``completed``; counts from its results; created and ended when they were recorded."""
    from openai.types import Batch

    table = ledger.read_results([batch_id], ["status", "error_code", "recorded_at"])
    codes = set(table.column("error_code").to_pylist())
    status = "cancelled" if "batch_cancelled" in codes else "expired" if "batch_expired" in codes else "completed"
    ok = sum(1 for s in table.column("status").to_pylist() if s == "ok")
    ended = int(max((t for t in table.column("recorded_at").to_pylist() if t is not None), default=0))
    return Batch.model_validate(
        {
            "id": batch_id,
            "object": "batch",
            "endpoint": endpoint,
            "input_file_id": "",
            "completion_window": "24h",
            "status": status,
            "created_at": ended,
            f"{status}_at": ended,
            "request_counts": {"total": table.num_rows, "completed": ok, "failed": table.num_rows - ok},
        }
    )


def _endpoint_of(requests_file: str) -> str:
    from batchkit.batch_api import DEFAULT_ENDPOINT

    if not requests_file:
        return DEFAULT_ENDPOINT
    import orjson

    from batchkit.storage import open_file

    with open_file(requests_file) as lines:
        first = next((raw for raw in lines if raw.strip()), b"")
    return str(orjson.loads(first).get("url") or DEFAULT_ENDPOINT) if first else DEFAULT_ENDPOINT
