"""Partition semantics on the default daily schedule, on the real scheduler and triggerer: the scheduled run
made when the DAG is unpaused loads yesterday's partition (the day that just closed), and `airflow backfill
create` over two dates runs one DAG run per partition, each loading its own (a one-file partition included)."""

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from ..helpers import running_stack

DAG_ID = "openai_batch_inference"
DATES = {"2026-11-22": 300, "2026-11-23": 450}
YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(
        tmp_path_factory.mktemp("backfill"),
        {**DATES, YESTERDAY: 200},
        DAG_ID,
        poll_seconds=2,
        schedule="@daily",
        emulator_args=("--seconds-per-request", "0.01"),
    ) as stack:
        yield stack


def test_the_scheduled_run_loads_the_day_that_just_closed(stack):
    deadline, runs = time.monotonic() + 300, []
    while time.monotonic() < deadline:
        runs = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?run_type=scheduled").json().get("dag_runs", [])
        if runs and runs[0]["state"] in ("success", "failed"):
            break
        time.sleep(3)
    assert [r["state"] for r in runs] == ["success"], runs
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        loaded = con.execute(
            "SELECT count(*), count(DISTINCT review_id) FROM review_sentiment WHERE partition_key = ? AND dag_run_id = ?",
            [YESTERDAY, runs[0]["dag_run_id"]],
        ).fetchone()
    assert loaded == (200, 200)


def test_backfill_runs_each_partition(stack):
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "backfill",
            "create",
            "--dag-id",
            DAG_ID,
            "--from-date",
            min(DATES),
            "--to-date",
            max(DATES),
            "--max-active-runs",
            "2",
        ],
        env=stack.env(),
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stderr[-2000:]
    run_ids = [f"backfill__{day}T00:00:00+00:00" for day in DATES]
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        states = {
            run_id: stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json().get("state")
            for run_id in run_ids
        }
        if all(state in ("success", "failed") for state in states.values()):
            break
        time.sleep(3)
    assert set(states.values()) == {"success"}, states
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        loaded = con.execute(
            "SELECT partition_key, dag_run_id, count(*), count(DISTINCT review_id) "
            "FROM review_sentiment WHERE partition_key <> ? GROUP BY 1, 2 ORDER BY 1",
            [YESTERDAY],
        ).fetchall()
    assert loaded == [(day, f"backfill__{day}T00:00:00+00:00", rows, rows) for day, rows in DATES.items()]
