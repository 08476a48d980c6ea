"""API faults in a real DAG run: 30% of lines fail with 429/500, half of all batch creations are refused with
429 (a storm on create) and 20% of every other API call fails with 429/500. Refused creations are retried a
few times in place, then after a wait on the triggerer.

The run must succeed with every row loaded exactly once, no batch key used twice (no request billed twice),
each successful answer loaded once, and lines that failed all attempts loaded as errors.
"""

import json
import secrets
import time
from collections import Counter

import duckdb
import psycopg
import pytest

from tests.helpers import emulator_objects, running_stack

DAG_ID = "openai_batch_inference"
ROWS, PER_FILE, MAX_ATTEMPTS = 1500, 500, 4
LATE, LATE_ROWS = "2026-11-25", 200  # loaded into a PostgreSQL database that appears after the load's first try
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LATE_DATABASE = f"batchkit_late_{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    args = (
        *("--line-failure-rate", "0.3", "--create-error-rate", "0.5", "--api-error-rate", "0.2"),
        *("--seconds-per-request", "0.002", "--validation-seconds", "0", "--seed", "3"),
    )
    late = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": LATE_DATABASE}
    settings = {
        "OPENAI_BATCH_QUEUE_WAIT_SECONDS": "5",
        "OPENAI_BATCH_TASK_RETRIES": "4",  # faults by design
        "AIRFLOW_CONN_LATE_DWH": json.dumps(late),
        "OPENAI_BATCH_ALLOWED_WAREHOUSE_CONNS": "late_dwh",
    }
    with running_stack(
        tmp_path_factory.mktemp("faults"),
        {"2026-11-24": ROWS, LATE: LATE_ROWS},
        DAG_ID,
        poll_seconds=2,
        emulator_args=args,
        extra_env=settings,
    ) as stack:
        yield stack
    with psycopg.connect(ADMIN, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{LATE_DATABASE}" WITH (FORCE)')


def test_line_failures_and_429_storms(stack):
    conf = {"partition": "2026-11-24", "max_requests_per_file": PER_FILE, "max_attempts": MAX_ATTEMPTS}
    stack.trigger(DAG_ID, "faults_1", conf)
    run = stack.wait_for_run(DAG_ID, "faults_1", timeout=480, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]

    batches = emulator_objects(stack, "batches")
    keys = Counter(b["metadata"]["batchkit_key"] for b in batches)
    assert max(keys.values()) == 1, "a batch key was used twice: a request would be billed twice"
    per_file = Counter(b["metadata"]["airflow_task"] for b in batches)
    assert set(per_file) == {"batch.submit[0]", "batch.submit[1]", "batch.submit[2]"}
    assert all(1 < n <= MAX_ATTEMPTS for n in per_file.values()), per_file  # failed lines were resubmitted
    answered_ok = sum(b["request_counts"]["completed"] for b in batches)

    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        total, distinct, ok, max_attempts_of_errors = con.execute(
            "SELECT count(*), count(DISTINCT review_id), count(*) FILTER (WHERE status = 'ok'), "
            "max(attempts) FILTER (WHERE status = 'error') FROM review_sentiment"
        ).fetchone()
    assert (total, distinct) == (ROWS, ROWS)
    assert ok == answered_ok, "every successful answer is loaded exactly once"
    assert ok >= ROWS * 0.95
    assert max_attempts_of_errors in (None, MAX_ATTEMPTS), "a row ends in error only after every attempt"


def test_a_warehouse_database_that_appears_after_the_first_try_is_loaded_on_the_retry(stack):
    """The warehouse is briefly unavailable (its database does not exist yet): the load's try fails as transient,
    Airflow retries it, and the retry loads every row once without sending any request again."""
    before = len(emulator_objects(stack, "batches"))
    conf = {"partition": LATE, "warehouse_conn_id": "late_dwh", "max_attempts": 1, "max_error_rate": 1.0}
    stack.trigger(DAG_ID, "late_1", conf)
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:  # the load's first try fails: then the database appears
        load = [t for t in stack.task_states(DAG_ID, "late_1") if t["task_id"] == "load"]
        if load and (load[0]["state"] == "up_for_retry" or load[0]["try_number"] > 1):
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the load never failed its first try")
    with psycopg.connect(ADMIN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{LATE_DATABASE}"')
    run = stack.wait_for_run(DAG_ID, "late_1", timeout=300, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    assert {t["task_id"]: t["try_number"] for t in run["tasks"]}["load"] > 1
    log = "".join(p.read_text() for p in (stack.airflow_home / "logs").rglob("run_id=late_1/task_id=load/*.log"))
    assert "cannot load into postgresql://" in log and f'{LATE_DATABASE}\\" does not exist' in log  # JSON lines
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{LATE_DATABASE}") as con:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT review_id) FROM review_sentiment WHERE partition_key = %s", [LATE]
        ).fetchone()
    assert (total, distinct) == (LATE_ROWS, LATE_ROWS)
    found = emulator_objects(stack, "batches")  # newest first
    created = found[: len(found) - before]
    keys = Counter(b["metadata"]["batchkit_key"] for b in created)
    assert created and max(keys.values()) == 1, "the retried load sent no request again"
