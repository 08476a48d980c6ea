"""Batch statuses and metadata names for the hook, trigger, sensor and operators (from ``batchkit.batch_api``),
and the trigger's own event status."""

from datetime import timedelta

from batchkit.batch_api import METADATA_KEY, QUEUE_FULL, TERMINAL, BatchStatus

__all__ = [
    "DEADLINE_PASSED",
    "GONE",
    "METADATA_KEY",
    "QUEUE_FULL",
    "TERMINAL",
    "BatchStatus",
    "failure",
    "progress",
    "queue_full",
]

DEADLINE_PASSED = "timeout"  # the trigger's event status when the deadline passed before the batch ended
GONE = "gone"  # the trigger's event status when the vendor has no such batch (deleted once its answers were recorded)


def queue_full(errors: object) -> bool:
    """True when a failed batch's errors (``batch.errors``) are all the enqueued-token limit."""
    data = getattr(errors, "data", None) or []
    return bool(data) and all(e.code == QUEUE_FULL for e in data)


def failure(batch_id: str, errors: object) -> str:
    """Why a failed batch fails its task: the API's validation errors, one per line (``batch.errors``).

    The one verdict on a failed batch for the wait and collect steps; a queue-full refusal (``queue_full``) is not a
    failure: the collect step waits and resubmits it."""
    data = getattr(errors, "data", None) or []
    lines = [f"  line {e.line}: {e.code}: {e.message}" if e.line else f"  {e.code}: {e.message}" for e in data]
    return f"batch {batch_id} failed:\n" + ("\n".join(lines) or "  (no details)")


def progress(status: str, counts: dict[str, int] | None, started_at: float | None, now: float) -> str:
    """One log line of a batch's progress: ``completed/failed/total (x%)`` and an ETA from the rate since
    ``started_at`` (a UNIX time, e.g. the batch's ``in_progress_at``), e.g.
    ``in_progress: 1200/30/5000 completed/failed/total (24.6%), ETA 0:03:21``."""
    if not counts:
        return f"{status}: no request counts yet"
    completed, failed, total = (int(counts.get(k) or 0) for k in ("completed", "failed", "total"))
    done = completed + failed
    line = f"{status}: {completed}/{failed}/{total} completed/failed/total ({100 * done / total if total else 0:.1f}%)"
    if status in TERMINAL or not total:
        return line
    if not done or not started_at or now <= started_at:
        return f"{line}, ETA unknown"
    return f"{line}, ETA {timedelta(seconds=round((total - done) * (now - started_at) / done))}"
