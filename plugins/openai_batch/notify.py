"""Run notifications of the main DAG by e-mail (smtp provider) and Slack (slack provider, an incoming webhook).

A failed run is always reported, a successful one when it is degraded (too many rows in error or with invalid
outputs) or when every success is asked for. The DAG's callbacks run on the dag-processor: they read the ``load``
task's XCom (reconciliation numbers, cost, report; pushed even when it refused the results), else the split's
estimate and report address, and, for a failed run, the error its failed task kept with
``record_error`` (the tasks' failure callback, on the worker). A pipeline in a task group is reported from its own
``<group>.load`` and ``<group>.split``, one message per pipeline. Nothing here looks up a connection or touches the
network before a callback runs.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from openai_batch.context import in_group
from openai_batch.policy import from_env

ERROR_KEY = "notify_error"  # XCom of a failed task: its error, secrets masked
MAX_ERROR_CHARS = 2000
LABELS = {  # the load XCom's keys, in this order; any other key follows under its own name
    "input_rows": "input rows",
    "requests_submitted": "requests submitted",
    "resubmitted": "resubmitted",
    "reused": "reused from earlier runs",
    "results_ok": "ok",
    "results_error": "in error",
    "results_invalid_output": "invalid output",
    "merged": "rows merged",
    "merged_file": "merged results",
    "cost_usd": "cost (USD)",
    "estimated_cost_usd": "estimated cost (USD)",
    "warehouse": "warehouse",
    "table": "table",
    "report": "report",
}


@dataclass(frozen=True)
class NotifySettings:
    """Where notifications go and when; no channel configured: none are sent (the default)."""

    smtp_conn_id: str = ""
    email_to: tuple[str, ...] = ()
    slack_conn_id: str = ""
    on_success: bool = False
    degraded_error_rate: float = 0.01

    @classmethod
    def from_env(cls) -> NotifySettings:
        """The ``OPENAI_BATCH_NOTIFY_*`` and ``OPENAI_BATCH_DEGRADED_ERROR_RATE`` settings."""
        settings = cls(
            smtp_conn_id=os.environ.get("OPENAI_BATCH_NOTIFY_SMTP_CONN_ID", "").strip(),
            email_to=tuple(from_env("OPENAI_BATCH_NOTIFY_EMAIL_TO", "")),
            slack_conn_id=os.environ.get("OPENAI_BATCH_NOTIFY_SLACK_CONN_ID", "").strip(),
            on_success=os.environ.get("OPENAI_BATCH_NOTIFY_ON_SUCCESS", "").strip().lower() in ("1", "true", "yes"),
            degraded_error_rate=float(os.environ.get("OPENAI_BATCH_DEGRADED_ERROR_RATE", "0.01")),
        )
        if bool(settings.smtp_conn_id) != bool(settings.email_to):
            raise ValueError("set both OPENAI_BATCH_NOTIFY_SMTP_CONN_ID and OPENAI_BATCH_NOTIFY_EMAIL_TO, or neither")
        return settings

    @property
    def enabled(self) -> bool:
        return bool(self.smtp_conn_id or self.slack_conn_id)


@dataclass(frozen=True)
class RunInfo:
    """The run a message is about."""

    dag_id: str
    run_id: str
    state: str  # failed, degraded or success
    url: str = ""
    partition: str = ""
    failed_task: str = ""
    error: str = ""
    pipeline: str = ""  # the task group of the pipeline reported (empty: the top level)


def degraded(numbers: Mapping[str, Any], threshold: float) -> list[str]:
    """Why a successful load is degraded: the shares of rows in error and with invalid outputs over
    ``threshold`` (none: not degraded, or no numbers)."""
    rows = numbers.get("merged")
    if not isinstance(rows, int) or rows <= 0:
        return []
    reasons = []
    for key, what in (("results_error", "ended in error"), ("results_invalid_output", "got an invalid output")):
        count = numbers.get(key)
        if isinstance(count, int) and count / rows > threshold:
            reasons.append(f"{count:,} of {rows:,} rows ({count / rows:.1%}) {what}, over {threshold:.1%}")
    return reasons


def format_message(run: RunInfo, numbers: Mapping[str, Any], reasons: Sequence[str] = ()) -> tuple[str, str]:
    """The subject and plain-text body: the run, why it is reported, then whichever load numbers are present."""
    where = f" (partition {run.partition})" if run.partition else ""
    subject = f"[{run.state}] {run.dag_id}{f' pipeline {run.pipeline}' if run.pipeline else ''} run {run.run_id}{where}"
    lines = [subject]
    if run.url:
        lines.append(f"Run: {run.url}")
    if run.state == "failed":
        lines.append(f"Failed task: {run.failed_task or 'unknown'}")
        if run.error:
            lines.append(f"Error: {run.error}")
    lines += [f"Degraded: {reason}" for reason in reasons]
    hidden = ("partition", "usage")  # usage: per file detail, in the report; its total is cost_usd
    shown = {k: v for k, v in numbers.items() if k not in hidden and v is not None and v != ""}
    if "merged" not in shown:
        lines.append("No load numbers: the load did not finish." if run.state == "failed" else "No load numbers.")
    for key in [*(k for k in LABELS if k in shown), *(k for k in shown if k not in LABELS)]:
        lines.append(f"{LABELS.get(key, key)}: {_value(key, shown[key])}")
    return subject, "\n".join(lines)


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"${value:,.4f}" if key.endswith("_usd") else f"{value:,.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_value(str(k), v)}" for k, v in value.items())
    return str(value)


def record_error(context: Any) -> None:
    """A task failure callback (it runs on the worker): keep the task's error, secrets masked, as its XCom
    ``notify_error`` for the run's failure message."""
    from airflow.sdk.log import redact

    if (exception := context.get("exception")) is not None:
        text = str(exception) or type(exception).__name__
        context["ti"].xcom_push(ERROR_KEY, str(redact(text))[:MAX_ERROR_CHARS])


class RunNotifier(BaseNotifier):
    """The DAG's ``on_failure_callback`` (``failed=True``) or ``on_success_callback``: builds the message once
    and sends it through each configured notifier (``SmtpNotifier``, ``SlackWebhookNotifier``). ``group_id``: the
    task group of the pipeline whose numbers it reports (empty: the top-level pipeline)."""

    def __init__(self, settings: NotifySettings, *, failed: bool, group_id: str = "") -> None:
        super().__init__()
        self.settings, self.failed, self.group_id = settings, failed, group_id

    def notify(self, context: Any) -> None:
        message = self.message(context)
        if message is None:
            return
        subject, text = message
        errors = []
        for notifier in self._notifiers(subject, text):
            try:
                notifier.notify(context)  # not __call__: the text is final, no Jinja rendering of error messages
            except Exception as exc:
                self.log.exception("%s could not send the notification", type(notifier).__name__)
                errors.append(f"{type(notifier).__name__}: {exc}")
        if errors:
            raise RuntimeError(f"notification of run {context['run_id']} not sent by {'; '.join(errors)}")

    def message(self, context: Any) -> tuple[str, str] | None:
        """Subject and text for this run, or ``None`` when a success is not to be reported."""
        from airflow.sdk.log import redact

        ti = context.get("ti")
        numbers = _numbers(ti, self.group_id)
        reasons = [] if self.failed else degraded(numbers, self.settings.degraded_error_rate)
        if not (self.failed or reasons or self.settings.on_success):
            return None
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        failed_task, error = _failure(ti) if self.failed else ("", "")
        run = RunInfo(
            dag_id=dag_id,
            run_id=run_id,
            state="failed" if self.failed else "degraded" if reasons else "success",
            url=run_url(dag_id, run_id),
            partition=str(numbers.get("partition") or _partition(context)),
            failed_task=failed_task,
            error=error,
            pipeline=self.group_id,
        )
        subject, text = format_message(run, numbers, reasons)
        return str(redact(subject)), str(redact(text))

    def _notifiers(self, subject: str, text: str) -> list[BaseNotifier]:
        notifiers: list[BaseNotifier] = []
        if self.settings.smtp_conn_id:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            body = f"<pre>{html.escape(text, quote=False)}</pre>"
            to, conn_id = list(self.settings.email_to), self.settings.smtp_conn_id
            notifiers.append(SmtpNotifier(to=to, smtp_conn_id=conn_id, subject=subject, html_content=body))
        if self.settings.slack_conn_id:
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

            escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # Slack mrkdwn
            notifiers.append(SlackWebhookNotifier(slack_webhook_conn_id=self.settings.slack_conn_id, text=escaped))
        return notifiers


def dag_callbacks(settings: NotifySettings, group_ids: Sequence[str] = ("",)) -> dict[str, Any]:
    """The DAG's ``on_failure_callback`` and ``on_success_callback`` (none when no channel is configured): one
    notifier per pipeline, named by its task group (``""``: the top-level pipeline), a list when there are several.
    """
    if not settings.enabled:
        return {}

    def notifiers(failed: bool) -> RunNotifier | list[RunNotifier]:
        each = [RunNotifier(settings, failed=failed, group_id=group_id) for group_id in group_ids]
        return each[0] if len(each) == 1 else each

    return {"on_failure_callback": notifiers(True), "on_success_callback": notifiers(False)}


def task_callbacks(settings: NotifySettings) -> dict[str, Any]:
    """The tasks' ``default_args`` for notifications: ``record_error`` on failure (none when disabled)."""
    return {"on_failure_callback": record_error} if settings.enabled else {}


def run_url(dag_id: str, run_id: str) -> str:
    """The run's page in the UI (``[api] base_url``)."""
    from airflow.sdk.configuration import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080/")
    return f"{base.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


def _pull(ti: Any, task_id: str, key: str, map_index: int = -1) -> Any:
    """An XCom of this run, or ``None`` when there is no task instance in the context or it cannot be read."""
    if ti is None:
        return None
    try:
        return ti.xcom_pull(task_ids=task_id, key=key, map_indexes=map_index)
    except Exception:
        return None


def _numbers(ti: Any, group_id: str = "") -> dict[str, Any]:
    """What the run can tell of the pipeline in ``group_id``: the load's result; else its numbers (pushed before it
    refused to load); else the split's estimate and the report's address (the load did not get that far)."""
    from openai_batch.operators.load import NUMBERS_KEY

    for key in ("return_value", NUMBERS_KEY):
        if isinstance(numbers := _pull(ti, in_group(group_id, "load"), key), dict):
            return numbers
    split = _pull(ti, in_group(group_id, "split"), "split")
    if not isinstance(split, dict):
        return {}
    estimate = split.get("estimate") if isinstance(split.get("estimate"), dict) else {}
    return {"estimated_cost_usd": estimate.get("usd"), "report": split.get("report")}


def _failure(ti: Any) -> tuple[str, str]:
    """The failed task instance of the context (``task[map_index]`` when mapped) and the error it recorded."""
    if ti is None:
        return "", ""
    map_index = -1 if getattr(ti, "map_index", None) is None else ti.map_index
    error = _pull(ti, ti.task_id, ERROR_KEY, map_index)
    return (f"{ti.task_id}[{map_index}]" if map_index >= 0 else ti.task_id), str(error or "")


def _partition(context: Any) -> str:
    from openai_batch.context import partition_key

    try:
        return partition_key(context)
    except Exception:
        return ""
