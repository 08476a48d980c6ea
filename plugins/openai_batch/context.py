"""What every task of a run agrees on: the partition key, the batch key and who is acting."""

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


def batch_key(dag_id: str, partition: str, file_sha256: str, attempt: int = 1) -> str:
    """The key of one batch: the same DAG, partition, file content and attempt always give the same key, whichever
    run, task or try asks, so overlapping runs of a partition share one batch per file instead of paying twice."""
    raw = "|".join(["v2", dag_id, partition, file_sha256, str(attempt)])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def actor(context: Any) -> str:
    """Who is acting, as recorded in ledger claims: ``<dag_id>/<run_id>/<task_id>[<map_index>]``."""
    ti = context["ti"]
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}[{ti.map_index}]"
