"""What every task of a run agrees on: the partition key and the batch key."""

from __future__ import annotations

import hashlib
from typing import Any


def partition_key(context: Any) -> str:
    """The ``partition`` Param, else the run's logical date, else its run_after date (manual/REST runs)."""
    given = (context["params"].get("partition") or "").strip()
    if given:
        return given
    dag_run = context["dag_run"]
    when = dag_run.logical_date or dag_run.run_after
    return when.strftime("%Y-%m-%d")


def batch_key(context: Any, file_sha256: str, attempt: int = 1) -> str:
    """A deterministic key for one batch of one run: the same task, run and file always give the same key."""
    ti = context["ti"]
    raw = "|".join([ti.dag_id, ti.run_id, ti.task_id, str(ti.map_index), file_sha256, str(attempt)])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
