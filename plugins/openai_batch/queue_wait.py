"""Waiting out a refused batch creation on the triggerer (outside ``operators``: the attempt loop uses it too,
and importing the operators package from there would be a cycle)."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException


def wait_then_retry(task: Any, waits: int, method: str, kwargs: dict[str, Any], reason: str) -> None:
    """A batch creation was refused (rate or queue limits): defer ``task`` for its ``queue_wait`` (a
    DateTimeTrigger on the triggerer: no worker slot is held), then call ``method`` with ``kwargs`` and
    ``waits + 1``. After ``max_queue_waits`` waits, fail instead."""
    from datetime import UTC, datetime, timedelta

    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    if waits >= task.max_queue_waits:
        raise AirflowException(
            f"batch creation was still refused after waiting {waits} x {task.queue_wait} ({reason}); raise the "
            "account's limits or the DAG's queue wait, then clear the task"
        )
    from openai_batch.triggers import SETTLE_SECONDS

    wait = max(task.queue_wait, timedelta(seconds=SETTLE_SECONDS))  # a sooner resume races the scheduler
    task.log.warning("%s; trying again in %s (wait %d of at most %d)", reason, wait, waits + 1, task.max_queue_waits)
    task.defer(
        trigger=DateTimeTrigger(moment=datetime.now(UTC) + wait),
        method_name=method,
        kwargs={**kwargs, "waits": waits + 1},
    )
