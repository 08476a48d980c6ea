"""What every task of a run agrees on: the partition key, the batch key, and the task run acting (``TaskRun``)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

DAILY = "%Y-%m-%d"
PARTITION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+-]{0,127}")  # one path segment, no glob characters
PLACEHOLDER = re.compile(r"\{partition(?::([^{}]+))?\}")  # {partition} or {partition:<strftime format>}


def partition_key(context: Any) -> str:
    """Which partition a run processes:

    1. the ``partition`` Param when given (manual runs);
    2. else the start of the run's data interval, formatted with the ``partition_format`` Param: a scheduled
       daily run fired at midnight processes the day that just closed, a backfill over D1..D2 makes one run per
       day D1..D2 (the DAG's schedule is a ``CronDataIntervalTimetable``);
    3. else (a run triggered through the REST API without a logical date) the last closed period before it
       was triggered: yesterday for daily partitions, the previous hour when the format has ``%H``.
    """
    params = context["params"]
    given = str(params.get("partition") or "").strip()
    if given:
        return safe_partition(given)
    fmt = params.get("partition_format") or DAILY
    dag_run = context["dag_run"]
    start = getattr(dag_run, "data_interval_start", None)
    if start is None:
        period = timedelta(hours=1) if "%H" in fmt else timedelta(days=1)
        start = dag_run.run_after - period
    return safe_partition(start.strftime(fmt))


def safe_partition(key: str) -> str:
    """``key`` if it can name a partition: it becomes a path segment of the staging area and is put into the
    source path, so no separators, no ``..``, no glob characters."""
    if not PARTITION_PATTERN.fullmatch(key):
        raise AirflowFailException(
            f"partition {key!r} is not a partition key: use letters, digits and . _ - : = + (e.g. 2026-11-24, "
            "2026-11-24T05); no slashes, '..' or glob characters"
        )
    return key


def fill_source(source: str, partition: str, partition_format: str = DAILY) -> str:
    """``source`` with ``{partition}`` replaced by the partition key and ``{partition:<format>}`` by the
    partition's time in that strftime format (the key read back with ``partition_format``): hourly folders
    ``dt=2026-11-24/hr=05`` are ``dt={partition:%Y-%m-%d}/hr={partition:%H}`` with keys like 2026-11-24T05."""

    def fill(found: re.Match[str]) -> str:
        if found.group(1) is None:
            return partition
        try:
            when = datetime.strptime(partition, partition_format)
        except ValueError:
            raise AirflowFailException(
                f"partition {partition!r} does not follow partition_format {partition_format!r}, so "
                f"{found.group(0)} in source cannot be filled in"
            ) from None
        return when.strftime(found.group(1))

    return PLACEHOLDER.sub(fill, source)


def in_group(group_id: str | None, task_id: str) -> str:
    """``task_id`` as Airflow names it inside the task group ``group_id`` (none: the top level, unchanged)."""
    return f"{group_id}.{task_id}" if group_id else task_id


def batch_key(
    dag_id: str, partition: str, file_sha256: str, attempt: int = 1, scope: str = "", pipeline: str = ""
) -> str:
    """The key of one batch: the same DAG, partition, file content and attempt always give the same key, whichever
    run, task or try asks, so overlapping runs of a partition share one batch per file instead of paying twice.
    ``scope`` (the run id of a deliberate full re-ask, ``reuse_results=false``) keeps that run's batches its own;
    ``pipeline`` (one in a task group) joins the DAG id as ``<dag_id>/<pipeline>``, which no DAG id can be, so two
    pipelines of a DAG never share a key (the top-level pipeline's keys are unchanged).
    """
    owner = f"{dag_id}/{pipeline}" if pipeline else dag_id
    raw = "|".join(["v2", owner, partition, file_sha256, str(attempt), *([scope] if scope else [])])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class TaskRun:
    """What a task needs from Airflow's context, read once at the top of ``execute``; everything below takes this
    value instead of the context. ``pipeline`` is the operator's ``pipeline_id`` (empty: the DAG's top-level
    pipeline), which gives a pipeline in a task group its own staging area, ledger and batch keys."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    partition: str
    partition_format: str = DAILY
    pipeline: str = ""

    @classmethod
    def of(cls, context: Any, pipeline: str = "") -> TaskRun:
        ti, fmt = context["ti"], context["params"].get("partition_format") or DAILY
        dag_id, partition = context["dag"].dag_id, partition_key(context)
        return cls(dag_id, context["run_id"], ti.task_id, ti.map_index, partition, fmt, pipeline)

    def source(self, template: str) -> str:
        """The source of this run's partition (see ``fill_source``)."""
        return fill_source(template, self.partition, self.partition_format)

    @property
    def actor(self) -> str:
        """Who is acting, as recorded in ledger claims: ``<dag_id>/<run_id>/<task_id>[<map_index>]``."""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}[{self.map_index}]"
