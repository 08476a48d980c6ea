"""Partition semantics on the default daily schedule, on the real scheduler and triggerer: the scheduled run
made when the DAG is unpaused loads yesterday's partition (the day that just closed), and a backfill created
over two dates (as the UI does) runs one DAG run per partition, each loading its own (a one-file partition
included)."""

import time
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from tests.helpers import running_stack

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
    # The UI's path (POST /backfills). On SQLite a write can lose the race for the database lock to the
    # scheduler ("database is locked", a 500); the request is one transaction, so asking again is safe.
    body = {"dag_id": DAG_ID, "from_date": min(DATES), "to_date": max(DATES), "max_active_runs": 2}
    for _ in range(5):
        created = stack.api("POST", "/api/v2/backfills", json=body)
        if created.status_code < 500:
            break
        time.sleep(2)
    assert created.status_code == 200, created.text[-2000:]
    deadline, runs = time.monotonic() + 420, []
    while time.monotonic() < deadline:
        runs = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?run_type=backfill").json().get("dag_runs", [])
        if len(runs) == len(DATES) and all(r["state"] in ("success", "failed") for r in runs):
            break
        time.sleep(3)
    assert sorted(r["state"] for r in runs) == ["success"] * len(DATES), runs
    # On a data-interval schedule each run covers one day: it is named after the interval's end (the next day)
    # and processes the day itself.
    partition_of = {r["dag_run_id"]: r["data_interval_start"][:10] for r in runs}
    assert sorted(partition_of.values()) == sorted(DATES)
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        loaded = con.execute(
            "SELECT partition_key, dag_run_id, count(*), count(DISTINCT review_id) "
            "FROM review_sentiment WHERE partition_key <> ? GROUP BY 1, 2 ORDER BY 1",
            [YESTERDAY],
        ).fetchall()
    assert loaded == sorted(
        (partition_of[run], run, DATES[partition_of[run]], DATES[partition_of[run]]) for run in partition_of
    )
