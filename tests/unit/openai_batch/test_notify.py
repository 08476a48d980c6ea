"""Run notifications: settings, the degraded decision, the message and which runs are reported."""

from types import SimpleNamespace
from typing import Any

import pytest

from openai_batch.notify import (
    ERROR_KEY,
    NotifySettings,
    RunInfo,
    RunNotifier,
    dag_callbacks,
    degraded,
    format_message,
    record_error,
    task_callbacks,
)

LOAD = {
    "warehouse": "duckdb:/data/warehouse.duckdb",
    "table": "review_sentiment",
    "partition": "2026-11-24",
    "input_rows": 3000,
    "requests_submitted": 2990,
    "resubmitted": 150,
    "reused": 10,
    "results_ok": 2900,
    "results_error": 40,
    "results_invalid_output": 60,
    "merged": 3000,
}


class FakeTI:
    """What a callback's ``ti`` offers here: its ids and ``xcom_pull`` of this run's XComs."""

    def __init__(self, task_id: str, map_index: int = -1, xcoms: dict[tuple[str, str, int], Any] | None = None):
        self.task_id, self.map_index, self.xcoms = task_id, map_index, xcoms or {}

    def xcom_pull(self, *, task_ids: str, key: str, map_indexes: int) -> Any:
        return self.xcoms.get((task_ids, key, map_indexes))

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[(self.task_id, key, self.map_index)] = value


def context(ti: FakeTI | None) -> dict[str, Any]:
    return {"dag": SimpleNamespace(dag_id="openai_batch_inference"), "run_id": "manual__1", "ti": ti, "params": {}}


def test_settings_are_off_by_default_and_read_from_the_environment(monkeypatch):
    for name in ("SMTP_CONN_ID", "EMAIL_TO", "SLACK_CONN_ID", "ON_SUCCESS"):
        monkeypatch.delenv(f"OPENAI_BATCH_NOTIFY_{name}", raising=False)
    off = NotifySettings.from_env()
    assert not off.enabled and dag_callbacks(off) == {} and task_callbacks(off) == {}
    monkeypatch.setenv("OPENAI_BATCH_NOTIFY_SLACK_CONN_ID", "slack_ops")
    monkeypatch.setenv("OPENAI_BATCH_NOTIFY_ON_SUCCESS", "true")
    monkeypatch.setenv("OPENAI_BATCH_DEGRADED_ERROR_RATE", "0.02")
    on = NotifySettings.from_env()
    assert (on.slack_conn_id, on.on_success, on.degraded_error_rate, on.smtp_conn_id) == ("slack_ops", True, 0.02, "")
    assert set(dag_callbacks(on)) == {"on_failure_callback", "on_success_callback"}
    assert task_callbacks(on) == {"on_failure_callback": record_error}
    monkeypatch.setenv("OPENAI_BATCH_NOTIFY_SMTP_CONN_ID", "smtp_ops")
    with pytest.raises(ValueError, match="OPENAI_BATCH_NOTIFY_EMAIL_TO"):
        NotifySettings.from_env()
    monkeypatch.setenv("OPENAI_BATCH_NOTIFY_EMAIL_TO", "a@example.com, b@example.com")
    assert NotifySettings.from_env().email_to == ("a@example.com", "b@example.com")


@pytest.mark.parametrize(
    ("numbers", "threshold", "expected"),
    [
        (LOAD, 0.05, []),  # 1.3% in error, 2% invalid
        (LOAD, 0.015, ["60 of 3,000 rows (2.0%) got an invalid output, over 1.5%"]),
        (
            LOAD,
            0.01,
            [
                "40 of 3,000 rows (1.3%) ended in error, over 1.0%",
                "60 of 3,000 rows (2.0%) got an invalid output, over 1.0%",
            ],
        ),
        ({"merged": 100, "results_error": 1}, 0.01, []),  # exactly at the threshold
        ({"merged": 0, "results_error": 0}, 0.0, []),
        ({}, 0.0, []),  # no load numbers (a dry run): nothing to judge
    ],
)
def test_degraded_when_a_share_is_over_the_threshold(numbers, threshold, expected):
    assert degraded(numbers, threshold) == expected


def test_the_message_shows_the_run_and_every_number_present():
    numbers = {
        **LOAD,
        "cost_usd": 1.23456,
        "estimated_cost_usd": 1.5,
        "report": "https://reports.example/run.html",
        "usage": {"prompt_tokens": 9000, "files": [{"index": 0}]},  # per-file detail: left to the report
        "dry_run_note": "kept",
    }
    run = RunInfo("openai_batch_inference", "manual__1", "degraded", "http://ui/dags/d/runs/manual__1", "2026-11-24")
    subject, text = format_message(run, numbers, ["40 of 3,000 rows (1.3%) ended in error, over 1.0%"])
    assert subject == "[degraded] openai_batch_inference run manual__1 (partition 2026-11-24)"
    assert text.splitlines() == [
        subject,
        "Run: http://ui/dags/d/runs/manual__1",
        "Degraded: 40 of 3,000 rows (1.3%) ended in error, over 1.0%",
        "input rows: 3,000",
        "requests submitted: 2,990",
        "resubmitted: 150",
        "reused from earlier runs: 10",
        "ok: 2,900",
        "in error: 40",
        "invalid output: 60",
        "rows merged: 3,000",
        "cost (USD): $1.2346",
        "estimated cost (USD): $1.5000",
        "warehouse: duckdb:/data/warehouse.duckdb",
        "table: review_sentiment",
        "report: https://reports.example/run.html",
        "dry_run_note: kept",
    ]


def test_a_failure_without_a_load_names_the_failed_task_and_its_error():
    run = RunInfo("d", "r1", "failed", failed_task="split", error="model 'gpt-imaginary' does not exist")
    subject, text = format_message(run, {})
    assert subject == "[failed] d run r1"
    assert text.splitlines()[1:] == [
        "Failed task: split",
        "Error: model 'gpt-imaginary' does not exist",
        "No load numbers: the load did not finish.",
    ]


def test_successes_are_reported_only_when_degraded_or_asked_for():
    quiet, loud = NotifySettings(slack_conn_id="s"), NotifySettings(slack_conn_id="s", on_success=True)
    clean = FakeTI(
        "prune_staging", xcoms={("load", "return_value", -1): {**LOAD, "results_error": 0, "results_invalid_output": 0}}
    )
    assert RunNotifier(quiet, failed=False).message(context(clean)) is None
    assert RunNotifier(loud, failed=False).message(context(clean))[0].startswith("[success] ")
    bad = FakeTI("load", xcoms={("load", "return_value", -1): LOAD})
    subject, text = RunNotifier(quiet, failed=False).message(context(bad))
    assert subject.startswith("[degraded] ") and "Degraded: 40 of 3,000 rows" in text
    assert RunNotifier(quiet, failed=False).message(context(None)) is None  # no task instance: nothing known


def test_a_failure_reports_the_error_its_task_recorded():
    ti = FakeTI("batch.submit", map_index=2)
    record_error({"ti": ti, "exception": RuntimeError("the batch expired")})
    assert ti.xcoms == {("batch.submit", ERROR_KEY, 2): "the batch expired"}
    subject, text = RunNotifier(NotifySettings(slack_conn_id="s"), failed=True).message(context(ti))
    assert subject == "[failed] openai_batch_inference run manual__1"
    assert "Failed task: batch.submit[2]\nError: the batch expired\n" in text
    assert "/dags/openai_batch_inference/runs/manual__1" in text


def test_a_refused_load_or_an_earlier_failure_still_reports_cost_and_the_report():
    settings = NotifySettings(slack_conn_id="s")
    refused = FakeTI("load", xcoms={("load", "numbers", -1): {**LOAD, "cost_usd": 0.5, "report": "s3://b/report.html"}})
    _, text = RunNotifier(settings, failed=True).message(context(refused))
    assert "rows merged: 3,000" in text and "cost (USD): $0.5000" in text and "report: s3://b/report.html" in text
    assert "No load numbers" not in text
    split = {"estimate": {"usd": 2.25}, "report": "/staging/run/report/report.html"}
    early = FakeTI("batch.submit", map_index=0, xcoms={("split", "split", -1): split})
    _, text = RunNotifier(settings, failed=True).message(context(early))
    assert "No load numbers: the load did not finish." in text
    assert "estimated cost (USD): $2.2500" in text and "report: /staging/run/report/report.html" in text


def test_a_pipeline_in_a_group_is_reported_from_its_own_tasks():
    settings = NotifySettings(slack_conn_id="s")
    xcoms = {("reviews.load", "return_value", -1): LOAD, ("load", "return_value", -1): {**LOAD, "merged": 1}}
    ti = FakeTI("reviews.batch.submit", map_index=0, xcoms=xcoms)
    subject, text = RunNotifier(settings, failed=True, group_id="reviews").message(context(ti))
    assert subject == "[failed] openai_batch_inference pipeline reviews run manual__1 (partition 2026-11-24)"
    assert "rows merged: 3,000" in text and "Failed task: reviews.batch.submit[0]" in text
    callbacks = dag_callbacks(settings, ("reviews", "tickets"))
    assert [n.group_id for n in callbacks["on_failure_callback"]] == ["reviews", "tickets"]
    assert [n.failed for n in callbacks["on_success_callback"]] == [False, False]
    assert isinstance(dag_callbacks(settings)["on_failure_callback"], RunNotifier)  # the shipped DAG's, as before
