"""Batch statuses and metadata names for the hook, trigger, sensor and operators (from ``batchkit.batch_api``)."""

from batchkit.batch_api import METADATA_KEY, QUEUE_FULL, TERMINAL

__all__ = ["METADATA_KEY", "QUEUE_FULL", "TERMINAL", "queue_full"]


def queue_full(errors: object) -> bool:
    """True when a failed batch's errors (``batch.errors``) are all the enqueued-token limit."""
    data = getattr(errors, "data", None) or []
    return bool(data) and all(e.code == QUEUE_FULL for e in data)
