"""Batch statuses and metadata names shared by the hook, trigger, sensor and operators (no heavy imports)."""

TERMINAL = ("completed", "failed", "expired", "cancelled")
NOT_ADOPTABLE = ("failed", "expired", "cancelled", "cancelling")  # a retry must not wait on these
METADATA_KEY = "batchkit_key"
