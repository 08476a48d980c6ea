"""The memory budget of one task process, and the DuckDB limits derived from it.

A task process is given ``task_memory_mb`` (``OPENAI_BATCH_TASK_MEMORY_MB`` in the DAG). Work that could grow with
the partition (the load's merge and its DuckDB load) sizes itself from what the process has left of that budget
when it starts, and spills the rest to local disk.
"""

import psutil

DEFAULT_TASK_MEMORY_MB = 800


def headroom(task_memory_mb: int) -> int:
    """Bytes this process may still use within ``task_memory_mb`` (at least 16 MB: a budget the process has
    already spent makes the work small and slow, never refused)."""
    used = psutil.Process().memory_info().rss
    return max(16 << 20, (task_memory_mb << 20) - used)


def duckdb_limit(available: int, share: int) -> str:
    """A DuckDB ``memory_limit`` of 1/``share`` of ``available`` bytes (DuckDB spills beyond it)."""
    return f"{max(32, available // share >> 20)}MB"
