"""What every operator of the pipeline shares: templated values as types, and waiting out refused creations."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException


def as_bool(value: Any) -> bool:
    """A templated flag: rendered Params may arrive as ``"False"`` when native rendering does not apply."""
    return value.strip().lower() in ("true", "1", "yes") if isinstance(value, str) else bool(value)


def as_list(value: Any) -> list[str]:
    """A templated list of names that may arrive as its text (``"['a', 'b']"``) or as ``"a, b"``."""
    if isinstance(value, str):
        import ast

        text = value.strip()
        value = ast.literal_eval(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
    return list(value or [])


def as_dict(value: Any) -> dict[str, Any]:
    """A templated JSON object that may arrive as its text."""
    if isinstance(value, str):
        import ast

        value = ast.literal_eval(value) if value.strip() else {}
    if not isinstance(value, dict):
        raise AirflowFailException(f"expected a JSON object, got {value!r}")
    return value


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
    task.log.warning(
        "%s; trying again in %s (wait %d of at most %d)", reason, task.queue_wait, waits + 1, task.max_queue_waits
    )
    from openai_batch.triggers import SETTLE_SECONDS

    wait = max(task.queue_wait, timedelta(seconds=SETTLE_SECONDS))  # a sooner resume races the scheduler
    task.defer(
        trigger=DateTimeTrigger(moment=datetime.now(UTC) + wait),
        method_name=method,
        kwargs={**kwargs, "waits": waits + 1},
    )
