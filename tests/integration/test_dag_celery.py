"""The main DAG on the CeleryExecutor as a multi-host deployment runs it: PostgreSQL metadata database, Redis
broker, two ``airflow celery worker`` processes with their own working directories and log folders (no shared
local disk: source and staging are on S3, the warehouse is PostgreSQL), scheduler, dag-processor, API server and
two triggerers. One worker is SIGKILLed (with its task process, as when its host dies) while a submit runs, and
the triggerer holding the deferred waits is SIGKILLed: the run succeeds with one batch per file and every row
loaded once."""

import json
import os
import secrets
import signal
import time
from contextlib import suppress
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest
import redis

from batchkit.dev.devstack import Stack
from batchkit.sentiment import SENTIMENT_SCHEMA
from tests.helpers import emulator_objects, s3_lake

pytestmark = pytest.mark.integration

DAG_ID = "openai_batch_inference"
PARTITION, ROWS, PER_FILE = "2026-11-24", 1200, 300
SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",  # a dead worker's task fails (then retries) soon
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "8",  # a dead triggerer's triggers move soon
    # a task the dead worker had taken from Redis but not started stays queued until this timeout (600 s default)
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "45",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
    "OPENAI_BATCH_RETRY_DELAY_SECONDS": "3",
    "OPENAI_BATCH_TASK_RETRIES": "4",  # the killed worker's task fails its try on purpose
}
WORKER = "celery worker --concurrency 2 --skip-serve-logs --celery-hostname {name}@%h"


@pytest.fixture(scope="module")
def lake(s3_endpoint, tmp_path_factory):
    return s3_lake(s3_endpoint, tmp_path_factory.mktemp("partition"), PARTITION, ROWS, "celery")


@pytest.fixture(scope="module")
def broker():
    """A Redis database index of its own on the machine's Redis, emptied afterwards."""
    index = secrets.randbelow(15) + 1
    yield f"redis://127.0.0.1:6379/{index}"
    redis.Redis(host="127.0.0.1", port=6379, db=index).flushdb()


@pytest.fixture(scope="module")
def stack(lake, s3_endpoint, database, broker, tmp_path_factory):
    _, bucket = lake
    root = tmp_path_factory.mktemp("celery")
    aws = {"conn_type": "aws", "login": "testing", "password": "testing"}
    aws["extra"] = {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}
    settings = {
        **SETTINGS,
        "AIRFLOW_CONN_LAKE": json.dumps(aws),
        "AIRFLOW_CONN_DWH": database.replace("postgresql://", "postgres://"),
        "OPENAI_BATCH_STORAGE_CONN_ID": "lake",
        "AIRFLOW_VAR_OPENAI_BATCH_STAGING": f"s3://{bucket}/staging",  # read as an Airflow Variable when tasks run
        "OPENAI_BATCH_ALLOWED_SOURCES": f"s3://{bucket}/reviews",
        "OPENAI_BATCH_ALLOWED_WAREHOUSE_CONNS": "dwh",
        "OPENAI_BATCH_ALLOWED_TABLES": "llm.*",
    }
    stack = Stack(
        root,
        executor="CeleryExecutor",
        metadata_db=database.replace("postgresql://", "postgresql+psycopg://"),
        broker_url=broker,
        poll_seconds=2,
        emulator_args=(
            *("--upload-delay-seconds", "4", "--validation-seconds", "0", "--seconds-per-request", "0.05"),
            *("--invalid-output-rate", "0.1"),  # structured answers truncated, refused or off-schema
        ),
        extra_env=settings,
    )
    try:
        stack.start(progress=lambda message: None)
        for name in ("worker1", "worker2"):  # as on two hosts: own working directory and log folder
            host = root / name
            (host / "logs").mkdir(parents=True)
            stack.add(WORKER.format(name=name), name, {"AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(host / "logs")}, host)
        stack.wait_for_dag(DAG_ID)
        yield stack
    finally:
        stack.stop()


def running_submit(stack: Stack, run_id: str) -> int | None:
    """The pid of a running submit task's process, once it has one."""
    for ti in stack.task_states(DAG_ID, run_id):
        if ti["task_id"] == "batch.submit" and ti["state"] == "running" and ti["pid"]:
            return ti["pid"]
    return None


def kill_host_of(stack: Stack, pid: int) -> str:
    """SIGKILL the worker whose process tree holds ``pid``, and the task process (own process group) with it."""
    ancestors = {p.pid for p in psutil.Process(pid).parents()}
    (name,) = [n for n in ("worker1", "worker2") if stack.processes[n].pid in ancestors]
    stack.kill(name)
    with suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    return name


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"waited {timeout:.0f}s for {what}")


def test_a_worker_and_a_triggerer_die_mid_run_and_every_row_is_loaded_once(stack, lake, database):
    fs, bucket = lake
    conf = {
        "partition": PARTITION,
        "source": f"s3://{bucket}/reviews/dt={{partition}}",
        "max_requests_per_file": PER_FILE,
        "warehouse_conn_id": "dwh",
        "target_table": "llm.review_sentiment",
        "output_schema": SENTIMENT_SCHEMA,  # typed answer columns in PostgreSQL
        "max_invalid_output_rate": 0.2,
    }
    stack.trigger(DAG_ID, "celery_1", conf)

    pid = wait_until(lambda: running_submit(stack, "celery_1"), 180, "a submit to run")
    killed_worker = kill_host_of(stack, pid)

    def deferred() -> int:
        states = stack.task_states(DAG_ID, "celery_1")
        return sum(t["state"] == "deferred" for t in states if t["task_id"] in ("batch.submit", "batch.wait"))

    wait_until(deferred, 180, "waits to defer on the triggerer")

    def held() -> int:  # the first triggerer runs a wait (it writes the wait's trigger log): the premise below
        return len(list((stack.airflow_home / "logs").rglob("run_id=celery_1/*/*/*.trigger.*.log")))

    wait_until(held, 180, "the first triggerer to run a wait")
    stack.add("triggerer --skip-serve-logs", "triggerer2")
    time.sleep(6)  # triggerer2 is heartbeating
    stack.kill("triggerer")  # it held every deferred wait so far: triggerer2 must take them over

    run = stack.wait_for_run(DAG_ID, "celery_1", timeout=420, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    submits = [t for t in run["tasks"] if t["task_id"] == "batch.submit"]
    assert len(submits) == ROWS // PER_FILE
    assert max(t["try_number"] for t in submits) == 2, f"the submit on {killed_worker} was retried"

    batches = [b for b in emulator_objects(stack, "batches") if b["metadata"]["airflow_run_id"] == "celery_1"]
    firsts = sorted(b["metadata"]["airflow_task"] for b in batches if "attempt" not in b["metadata"])
    assert firsts == [f"batch.submit[{i}]" for i in range(ROWS // PER_FILE)], "one first batch per file"
    assert len(batches) > len(firsts), "truncated answers were sent again in later batches"
    assert {b["status"] for b in batches} == {"completed"}
    with psycopg.connect(database) as con:
        loaded = con.execute(
            "SELECT count(*), count(DISTINCT review_id), count(*) FILTER (WHERE status IN ('ok', 'invalid_output')), "
            "count(*) FILTER (WHERE status = 'ok' AND label IN ('positive', 'negative', 'neutral') AND confidence "
            "BETWEEN 0 AND 1) + count(*) FILTER (WHERE status = 'invalid_output' AND label IS NULL "
            "AND error_code LIKE 'output_%%') FROM llm.review_sentiment WHERE partition_key = %s",
            (PARTITION,),
        ).fetchone()
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'llm' "
                "AND table_name = 'review_sentiment' AND column_name IN ('label', 'confidence')"
            ).fetchall()
        )
    assert loaded == (ROWS, ROWS, ROWS, ROWS), "every row is ok with typed columns, or marked invalid_output"
    assert types == {"label": "text", "confidence": "double precision"}
    events = stack.api("GET", "/api/v2/assets/events").json()["asset_events"]
    where = urlsplit(database)  # the asset names the table, never the credentials
    assert [e["uri"] for e in events] == [f"postgres://{where.hostname}:{where.port}{where.path}/llm/review_sentiment"]
    ledger = fs.find(f"{bucket}/staging/{DAG_ID}/{PARTITION}/_ledger")  # staging from the Variable, on S3
    assert len([p for p in ledger if p.endswith(".parquet.done")]) == len(batches), "each batch's results, once"
    assert not (stack.data_dir / "staging").exists(), "nothing was staged on a worker's local disk"
    jobs_per_wait: dict[str, set[str]] = {}  # <task>/<attempt>.log.trigger.<triggerer job id>.log
    for path in (stack.airflow_home / "logs").rglob("run_id=celery_1/*/*/*.trigger.*.log"):
        jobs_per_wait.setdefault(f"{path.parent}/{path.name.split('.log.')[0]}", set()).add(path.name.split(".")[-2])
    assert any(len(jobs) == 2 for jobs in jobs_per_wait.values()), f"no wait moved triggerer: {jobs_per_wait}"
    worker_logs = [p for n in ("worker1", "worker2") for p in (stack.root / n / "logs").rglob("*.log")]
    assert {p.parts[len(stack.root.parts)] for p in worker_logs} == {"worker1", "worker2"}, "both workers ran tasks"
