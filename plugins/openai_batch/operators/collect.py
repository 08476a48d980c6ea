"""Step 4: make sure a batch file's attempts are all recorded in the ledger, and report its counts."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from batchkit.results.answers import ResultStatus
from openai_batch.attempts import AttemptLoop
from openai_batch.retention import DEFAULT, Lifetimes, as_lifetime

if TYPE_CHECKING:
    from openai.types import Batch

    from batchkit.ledger import Claim, Ledger
    from openai_batch.vendors.base import BatchVendor


class CollectResultsOperator(AttemptLoop, BaseOperator):
    """Make sure a batch file's answers are all in the partition's ledger, and report its counts.

    The submit step normally follows the file's batches to the end; this step runs the same loop
    (``attempts.AttemptLoop``) and then finds nothing left to do. Used on its own (after a submit with
    ``wait_for_completion=False``), it waits, records and resubmits itself. The load step merges the ledger's
    answers onto the rows.

    :returns: ``{"index", "rows", "ok", "errors", "batch_ids", "batches", "manifest", "requests", "resubmitted"}``
        for this file; ``batches`` gives each batch's status, request counts and timestamps (for the run report).
    :param pipeline_id: as for ``SplitPartitionOperator``.
    :param expires_after: as for ``SubmitBatchOperator`` (for resubmissions), and ``output_expires_after``,
        ``keep_vendor_files`` (whether a recorded batch's files stay at the vendor).
    """

    template_fields = ("batch_file", "batch_id", "staging_root", "max_attempts", "conn_id")

    def __init__(
        self,
        *,
        batch_file: dict[str, Any],
        batch_id: str,
        staging_root: str,
        conn_id: str = "openai_default",
        storage_conn_id: str | None = None,
        max_attempts: int = 3,
        poll_interval: float = 60,
        completion_window: timedelta = timedelta(hours=24),
        queue_wait: timedelta = timedelta(minutes=10),
        max_queue_waits: int = 12,
        pipeline_id: str = "",
        expires_after: timedelta | None = DEFAULT,
        output_expires_after: timedelta | dict[str, Any] | None = DEFAULT,
        keep_vendor_files: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline_id = pipeline_id
        self.lifetimes = Lifetimes(as_lifetime(expires_after), as_lifetime(output_expires_after), keep_vendor_files)
        self.batch_file, self.batch_id, self.staging_root, self.conn_id = batch_file, batch_id, staging_root, conn_id
        self.max_attempts, self.poll_interval, self.completion_window = max_attempts, poll_interval, completion_window
        self.queue_wait, self.storage_conn_id, self.max_queue_waits = queue_wait, storage_conn_id, max_queue_waits

    def execute(self, context: Any) -> dict[str, Any]:
        return self.collect(context)

    def collect(
        self, context: Any, event: dict[str, Any] | None = None, waited: bool = False, waits: int = 0, **_: Any
    ) -> dict[str, Any]:
        """Resumed here after every deferral (older versions passed ``batch_ids`` too: the ledger has them)."""
        chain, latest, resubmitted, retry = self.follow_attempts(context, "collect", event, waited, waits)
        ok = sum(1 for status, *_ in latest.values() if status == ResultStatus.OK)
        batch_ids = [b.id for b in chain]
        self.log.info("%d results (%d ok) of batch(es) %s are in the ledger", len(latest), ok, ", ".join(batch_ids))
        if retry:
            self.log.warning(
                "%d line(s) still unanswered after %d attempts; they load with their error code and a clear or "
                "rerun of the partition sends them again",
                len(retry),
                len(chain),
            )
        return {
            "index": self.batch_file["index"],
            "rows": len(latest),
            "ok": ok,
            "errors": len(latest) - ok,
            "batch_ids": batch_ids,
            "batches": [_timeline(b) for b in chain],
            "manifest": self.batch_file["manifest"],
            "requests": self.batch_file["requests"],
            "resubmitted": resubmitted,
        }

    def first_batch(self, context: Any, vendor: BatchVendor, claim: Claim | None, ledger: Ledger) -> Batch:
        return self._batch(vendor, ledger, self.batch_id)


def _timeline(batch: Batch) -> dict[str, Any]:
    """A batch's status, counts and when it was created and ended (epoch seconds), for the report."""
    ended = batch.completed_at or batch.failed_at or batch.expired_at or batch.cancelled_at
    counts = batch.request_counts
    return {
        "id": batch.id,
        "status": batch.status,
        "created_at": batch.created_at,
        "ended_at": ended,
        "total": counts.total if counts else None,
        "completed": counts.completed if counts else None,
        "failed": counts.failed if counts else None,
    }
