"""The request ledger of one (DAG, partition): which requests were answered, by which batch, and who creates
which batch. Every run, retry and worker of the partition consults it, so nothing is paid for twice.

Layout under ``<staging>/<dag_id>/<partition>/_ledger/`` (a pipeline in a task group: ``<staging>/<dag_id>/
_pipelines/<pipeline_id>/<partition>/_ledger/``, see ``storage.pipeline_parts``; local disk or S3; every file is
written whole, by an atomic rename or one PUT, so readers never see half a file and concurrent writers need no
locks):

- ``batches/<key>.json`` — one claim per batch key: created exclusively before the batch is created (two runs
  race, one wins), then rewritten by its owner with the batch id (and a deadline cancel). It is the persisted attempt chain and bounds the
  lost-create lookup: no claim means nothing can have been created.
- ``results/<batch_id>.parquet`` — one row per request a terminal batch answered: ``custom_id``, the
  request ``fingerprint`` (model + endpoint + rendered body), the result columns and ``final``.

A request is *answered* when a result with its ``custom_id`` and ``fingerprint`` is final: ``ok``, or an error
that sending the same body again would repeat (a 400). Expired, cancelled, throttled and 5xx lines are not
final: a clear or a rerun may send them again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from . import storage
from .batch_api import RETRYABLE_CODES, RETRYABLE_HTTP_STATUS
from .errors import LedgerError
from .results.answers import ResultStatus
from .results.result_schema import CACHE_SCHEMA, LEDGER_SCHEMA
from .split.answered import Answered
from .storage import LEDGER_DIR, pipeline_parts  # beside the run directories; prune keeps it


def fingerprint(request_without_id: bytes) -> str:
    """What identifies a request's content: the line's bytes after its ``custom_id`` (method, url, body)."""
    return hashlib.sha256(request_without_id).hexdigest()[:32]


def is_retryable(status: str, http_status: int | None, error_code: str | None) -> bool:
    """A line the same run may resubmit (throttling, server errors, expiry; not a cancelled batch's lines)."""
    return status in (ResultStatus.ERROR, ResultStatus.INVALID_OUTPUT) and (
        http_status in RETRYABLE_HTTP_STATUS or error_code in RETRYABLE_CODES
    )


@dataclass
class Claim:
    """Who creates the batch of one key; ``batch_id`` is set once the batch exists."""

    key: str
    owner: str  # "<dag_id>/<run_id>/<task_id>[<map_index>]" of the creator
    file_sha256: str
    claimed_at: float
    batch_id: str | None = None
    cancelled_at: float | None = None  # set when the pipeline cancelled the batch for its deadline

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))


class Ledger:
    """The request ledger at ``root`` (a directory or an ``s3://`` prefix)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    @classmethod
    def for_partition(cls, staging_root: str, dag_id: str, partition: str, pipeline_id: str = "") -> Ledger:
        return cls("/".join([staging_root.rstrip("/"), *pipeline_parts(dag_id, pipeline_id), partition, LEDGER_DIR]))

    # Claims: one creator per batch key
    def claim(self, key: str, owner: str, file_sha256: str) -> Claim | None:
        """Claim ``key``; None when this caller won, else the existing claim (another run's or an earlier try's)."""
        mine = Claim(key, owner, file_sha256, time.time())
        if storage.write_bytes(self._claim_url(key), mine.to_json(), exclusive=True):
            return None
        existing = self.claim_of(key)
        if existing is None:
            raise LedgerError(f"claim {self._claim_url(key)} exists but cannot be read")
        return existing

    def take_over(self, claim: Claim, owner: str) -> None:
        """Become the creator of a claim whose creator is gone (an earlier try, or a stale claim)."""
        claim.owner, claim.claimed_at = owner, time.time()
        storage.write_bytes(self._claim_url(claim.key), claim.to_json())

    def claim_of(self, key: str) -> Claim | None:
        data = storage.read_bytes(self._claim_url(key))
        if data is None:
            return None
        try:
            return Claim(**orjson.loads(data))
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise LedgerError(
                f"ledger claim {self._claim_url(key)} is corrupt ({exc}); it guards against paying twice, so "
                "nothing is created until it is repaired: delete it only once no batch carries this key"
            ) from None

    def record_batch(self, claim: Claim, batch_id: str) -> None:
        claim.batch_id = batch_id
        storage.write_bytes(self._claim_url(claim.key), claim.to_json())

    def other_claims(self, exclude: str) -> list[Claim]:
        """The partition's claims but that of key ``exclude``: a lost-create lookup without a server-side tag must
        not adopt a batch another claim names, nor guess while another claim is still creating its batch."""
        urls = storage.list_files(f"{self.root}/batches", ".json")
        keys = [url.rsplit("/", 1)[-1].removesuffix(".json") for url in urls]
        return [c for k in keys if k != exclude and (c := self.claim_of(k)) is not None]

    def record_cancel(self, claim: Claim) -> None:
        """The pipeline cancelled this batch for its deadline: its unfinished lines may go into the next attempt."""
        claim.cancelled_at = time.time()
        storage.write_bytes(self._claim_url(claim.key), claim.to_json())

    # Results: one file per terminal batch
    def results_url(self, batch_id: str) -> str:
        return f"{self.root}/results/{batch_id}.parquet"

    def has_results(self, batch_id: str) -> bool:
        return storage.read_bytes(self.results_url(batch_id) + ".done") is not None

    def record_results(self, batch_id: str, local: Path) -> str:
        """Publish a batch's results file (``results.write_results``), then its completion mark."""
        url = self.results_url(batch_id)
        storage.put_file(local, url)
        storage.write_bytes(url + ".done", b"")
        return url

    def result_files(self) -> list[str]:
        """Every complete results file of the partition."""
        return [url.removesuffix(".done") for url in storage.list_files(f"{self.root}/results", ".parquet.done")]

    def read_results(self, batch_ids: Iterable[str], columns: list[str]) -> pa.Table:
        return _read([self.results_url(b) for b in batch_ids], columns)

    def each_result(self, batch_ids: Iterable[str], columns: list[str]) -> Iterator[pa.Table]:
        """Each batch's results, read one batch at a time (a run's may not fit in memory together)."""
        return (_read([self.results_url(b)], columns) for b in batch_ids)

    def answered(self) -> Answered:
        """Requests answered for good (by any run), for the split to leave out."""
        columns = ["custom_id", "fingerprint", "final"]
        return Answered.of(_read([url], columns) for url in self.result_files())  # a file at a time

    def _claim_url(self, key: str) -> str:
        return f"{self.root}/batches/{key}.json"


def _read(urls: list[str], columns: list[str]) -> pa.Table:
    tables = []
    for url in urls:
        try:
            with storage.open_file(url) as handle:
                tables.append(_with_columns(pq.read_table(handle, columns=_present(handle, columns)), columns))
        except (OSError, pa.ArrowException) as exc:
            raise LedgerError(
                f"ledger results file {url} cannot be read ({exc}); the ledger decides what was answered, so "
                "nothing is re-sent until it is repaired (delete it together with its .done mark to re-ask "
                "its requests)"
            ) from None
    if not tables:
        return _with_columns(pa.table({}), columns)
    return pa.concat_tables(tables)


def _present(handle: Any, columns: list[str]) -> list[str]:
    """``columns`` less those a file written before they existed lacks (the cache token counts)."""
    names = set(pq.read_schema(handle).names)
    handle.seek(0)
    return [c for c in columns if c in names or c not in CACHE_SCHEMA.names]


def _with_columns(table: pa.Table, columns: list[str]) -> pa.Table:
    """``table`` with ``columns`` in that order, a missing one as nulls."""
    n = table.num_rows
    return pa.table({c: table.column(c) if c in table.column_names else pa.nulls(n, _type(c)) for c in columns})


def _type(column: str) -> pa.DataType:
    index = LEDGER_SCHEMA.get_field_index(column)
    return LEDGER_SCHEMA.field(index).type if index >= 0 else pa.string()
