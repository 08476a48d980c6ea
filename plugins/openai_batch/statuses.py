"""Batch statuses and metadata names shared by the hook, trigger, sensor and operators (no heavy imports)."""

TERMINAL = ("completed", "failed", "expired", "cancelled")
NOT_ADOPTABLE = ("failed", "expired", "cancelled", "cancelling")  # a retry must not wait on these
METADATA_KEY = "batchkit_key"
QUEUE_FULL = "token_limit_exceeded"  # a batch refused for the enqueued-token limit: wait, then resubmit it whole


def queue_full(errors: object) -> bool:
    """True when a failed batch's errors (``batch.errors``) are all the enqueued-token limit."""
    data = getattr(errors, "data", None) or []
    return bool(data) and all(e.code == QUEUE_FULL for e in data)
