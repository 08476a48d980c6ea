"""The main DAG end to end on real Airflow components: api-server, scheduler, dag-processor and triggerer
(LocalExecutor, SQLite) against the emulator, with DuckDB as the warehouse.

The emulator fails 5% of lines with 429/500 so the collect step's resubmission runs too.
"""

import re
from pathlib import Path

import duckdb
import pytest

from batchkit.devstack import Stack

from ..helpers import emulator_objects, running_stack

DAG_ID = "openai_batch_inference"
ROWS, PER_FILE = 3000, 1000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    args = ("--seconds-per-request", "0.004", "--line-failure-rate", "0.05", "--validation-seconds", "1")
    with running_stack(
        tmp_path_factory.mktemp("stack"), {"2026-11-24": ROWS}, DAG_ID, poll_seconds=2, emulator_args=args
    ) as stack:
        yield stack


def loaded(stack: Stack, partition: str) -> tuple[int, int, dict[str, int]]:
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT review_id) FROM review_sentiment WHERE partition_key = ?", [partition]
        ).fetchone()
        statuses = dict(
            con.execute(
                "SELECT status, count(*) FROM review_sentiment WHERE partition_key = ? GROUP BY 1", [partition]
            ).fetchall()
        )
    return total, distinct, statuses


def test_run_defers_on_the_triggerer_loads_every_row_once_and_reruns_idempotently(stack):
    conf = {"partition": "2026-11-24", "max_requests_per_file": PER_FILE}
    stack.trigger(DAG_ID, "it_1", conf)
    run = stack.wait_for_run(DAG_ID, "it_1", timeout=480, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    assert ("batch.submit", "deferred") in run["seen"]
    trigger_logs = list((stack.airflow_home / "logs").rglob("run_id=it_1/task_id=batch.submit/*/*.trigger.*.log"))
    assert trigger_logs, "no trigger log: the wait did not run on the triggerer"
    assert any(
        "openai_batch.triggers.OpenAIBatchStatusTrigger" in p.read_text() and "completed/failed/total" in p.read_text()
        for p in trigger_logs
    )
    assert len([t for t in run["tasks"] if t["task_id"] == "batch.submit"]) == ROWS // PER_FILE

    total, distinct, statuses = loaded(stack, "2026-11-24")
    assert total == ROWS and distinct == ROWS
    events = stack.api("GET", "/api/v2/assets/events").json()["asset_events"]  # the alias names the table loaded
    assert [e["uri"] for e in events] == [f"duckdb:{stack.duckdb_path.resolve()}/review_sentiment"]
    assert events[0]["extra"]["rows"] == ROWS
    assert statuses.get("ok", 0) >= ROWS * 0.99  # 5% injected failures were resubmitted
    created = emulator_objects(stack, "batches")
    originals = [b for b in created if "attempt" not in (b["metadata"] or {})]
    assert len(originals) == ROWS // PER_FILE and len(created) > len(originals)  # retry batches ran
    for batch in originals:
        meta = batch["metadata"]
        assert meta["airflow_dag_id"] == DAG_ID and meta["airflow_run_id"] == "it_1"
        assert meta["partition"] == "2026-11-24" and re.fullmatch(r"[0-9a-f]{32}", meta["file_sha256"])

    unanswered = ROWS - statuses.get("ok", 0)  # lines still 429/500 after every attempt
    stack.clear(DAG_ID, "it_1")
    rerun = stack.wait_for_run(DAG_ID, "it_1", timeout=480, progress=lambda message: None)
    assert rerun["state"] == "success", rerun["tasks"]
    new = [b for b in emulator_objects(stack, "batches") if b["id"] not in {c["id"] for c in created}]
    first_tries = [b for b in new if "attempt" not in (b["metadata"] or {})]
    assert sum(b["request_counts"]["total"] for b in first_tries) == unanswered  # answered lines are never re-sent
    assert loaded(stack, "2026-11-24")[:2] == (ROWS, ROWS)


def test_unknown_model_fails_before_anything_is_submitted(stack):
    before = len(emulator_objects(stack, "batches"))
    stack.trigger(DAG_ID, "it_bad_model", {"partition": "2026-11-24", "model": "gpt-imaginary"})
    run = stack.wait_for_run(DAG_ID, "it_bad_model", timeout=240, progress=lambda message: None)
    assert run["state"] == "failed"
    assert {t["task_id"]: t["state"] for t in run["tasks"]}["split"] == "failed"
    assert len(emulator_objects(stack, "batches")) == before
    log = next(Path(stack.airflow_home / "logs").rglob("run_id=it_bad_model/task_id=split/*.log")).read_text()
    assert "model 'gpt-imaginary' does not exist" in log
