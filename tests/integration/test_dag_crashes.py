"""Crashes during a run, then restarts: Airflow's API server (through which tasks report state and XComs) is
killed with SIGKILL while the submit tasks are running, then the triggerer, the emulator (the OpenAI API) and
the API server again while every submit waits deferred on its batch. The run still succeeds, with no second batch for any file
and every row loaded exactly once.

On Anthropic Message Batches (no metadata on a batch, its own status and results paths), on the same stack:

- the triggerer and the emulator killed while every message batch runs: each is still collected once;
- a lost create: the emulator is killed while it holds both creates' answers (the batches exist, no task heard of
  them): each submit finds its batch without a metadata tag and adopts it, none is created twice.
"""

import json
import time
from collections.abc import Iterator

import duckdb
import pytest

from batchkit.dev.devstack import Stack
from batchkit.emulator.launcher import free_port
from tests.helpers import (
    anthropic_connection,
    emulator_objects,
    emulator_settings,
    message_batch_requests,
    message_batches,
    running_stack,
)

DAG_ID = "openai_batch_inference"
ROWS, PER_FILE = 1200, 400
ANTHROPIC = {"2026-11-20": 40, "2026-11-21": 40}  # partitions: the triggerer crash, the lost create
CLAUDE = {"conn_id": "anthropic_emulator", "model": "claude-haiku-4-5", "max_requests_per_file": 20}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    args = ("--seconds-per-request", "0.05", "--validation-seconds", "1", "--upload-delay-seconds", "4")
    port = free_port()
    with running_stack(
        tmp_path_factory.mktemp("crash"),
        {"2026-11-24": ROWS, **ANTHROPIC},
        DAG_ID,
        poll_seconds=2,
        emulator_args=args,
        emulator_port=port,
        extra_env={
            "OPENAI_BATCH_RETRY_DELAY_SECONDS": "2",  # a submit that failed with the API server retries soon
            "OPENAI_BATCH_TASK_RETRIES": "4",  # the killed components fail tries on purpose
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",  # the dead triggerer's waits move on soon
            "OPENAI_BATCH_KEEP_VENDOR_FILES": "true",  # the tests count the message batches and files sent
            **anthropic_connection(port),
        },
    ) as stack:
        yield stack


def rows_of(stack: Stack, partition: str) -> tuple[int, int, int]:
    """(rows, distinct review ids, ok rows) loaded for ``partition``."""
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        return con.execute(
            "SELECT count(*), count(DISTINCT review_id), count(*) FILTER (WHERE status = 'ok') "
            "FROM review_sentiment WHERE partition_key = ?",
            [partition],
        ).fetchone()


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"waited {timeout:.0f}s for {what}")


def submits(stack: Stack, run_id: str) -> list[dict]:
    return [t for t in stack.task_states(DAG_ID, run_id) if t["task_id"] == "batch.submit"]


def test_triggerer_emulator_and_api_server_crash_mid_wait(stack):
    stack.trigger(DAG_ID, "crash_1", {"partition": "2026-11-24", "max_requests_per_file": PER_FILE})
    wait_until(lambda: any(t["state"] == "running" for t in submits(stack, "crash_1")), 120, "a running submit")
    stack.kill("api-server")  # the submit tasks are uploading (answered 4 s late): they report to a dead API
    time.sleep(3)
    stack.restart("api-server")

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        states = [t["state"] for t in submits(stack, "crash_1")]
        if states and all(state == "deferred" for state in states):
            break
        time.sleep(1)
    assert states and all(state == "deferred" for state in states), states

    killed_at = time.time()
    stack.kill("triggerer")
    stack.kill("emulator")
    stack.kill("api-server")
    time.sleep(3)
    stack.restart("api-server")
    stack.restart("emulator")
    stack.restart("triggerer")

    run = stack.wait_for_run(DAG_ID, "crash_1", timeout=420, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    batches = emulator_objects(stack, "batches")
    assert len(batches) == ROWS // PER_FILE  # nothing resubmitted twice
    assert {b["status"] for b in batches} == {"completed"}
    assert all(b["completed_at"] >= int(killed_at) for b in batches)  # they were in flight at the crash
    assert rows_of(stack, "2026-11-24") == (ROWS, ROWS, ROWS)


def test_anthropic_triggerer_and_emulator_killed_mid_wait_collect_each_message_batch_once(stack):
    partition, rows = "2026-11-20", ANTHROPIC["2026-11-20"]
    before = {b.id for b in message_batches(stack)}
    with emulator_settings(stack, "--seconds-per-request", "1.5", "--validation-seconds", "1"):  # 30 s per batch
        stack.trigger(DAG_ID, "claude_crash", {"partition": partition, **CLAUDE})
        wait_until(
            lambda: (s := submits(stack, "claude_crash")) and all(t["state"] == "deferred" for t in s), 180, "deferrals"
        )
        running = [b for b in message_batches(stack) if b.id not in before]
        assert len(running) == rows // 20 and {b.processing_status for b in running} == {"in_progress"}
        killed_at = time.time()
        stack.kill("triggerer")
        stack.kill("emulator")
        time.sleep(3)
        stack.restart("emulator")
        stack.restart("triggerer")
        run = stack.wait_for_run(DAG_ID, "claude_crash", timeout=420, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    made = [b for b in message_batches(stack) if b.id not in before]
    assert sorted(b.id for b in made) == sorted(b.id for b in running), "no message batch created twice"
    assert all(b.processing_status == "ended" and b.ended_at.timestamp() >= int(killed_at) for b in made)
    assert [b.request_counts.succeeded for b in made] == [20] * len(made)
    sent = [i for b in made for i in message_batch_requests(stack, b.id)]
    assert len(sent) == len(set(sent)) == rows
    assert rows_of(stack, partition) == (rows, rows, rows)


def test_anthropic_lost_creates_are_adopted_without_a_metadata_tag(stack):
    partition, rows = "2026-11-21", ANTHROPIC["2026-11-21"]
    claims = stack.data_dir / "staging" / DAG_ID / partition / "_ledger" / "batches"
    before = {b.id for b in message_batches(stack)}
    slow = ("--seconds-per-request", "1", "--validation-seconds", "1")  # 20 s per batch: running at the lookup
    with emulator_settings(stack, *slow, "--create-delay-seconds", "20"):
        stack.trigger(DAG_ID, "claude_lost", {"partition": partition, **CLAUDE})
        wait_until(lambda: len({b.id for b in message_batches(stack)} - before) == rows // 20, 180, "both creates")
        found = [json.loads(c.read_bytes()) for c in claims.glob("*.json")]
        assert len(found) == rows // 20 and not [c for c in found if c["batch_id"]], found  # both answers pending
        stack.kill("emulator")  # the creates' answers are lost: the batches exist, no task knows their ids
        stack.emulator_args = slow
        stack.restart("emulator")
        run = stack.wait_for_run(DAG_ID, "claude_lost", timeout=420, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    made = [b for b in message_batches(stack) if b.id not in before]
    assert len(made) == rows // 20, [(b.id, b.request_counts) for b in made]  # each file's batch created once
    sent = [i for b in made for i in message_batch_requests(stack, b.id)]
    assert len(sent) == len(set(sent)) == rows
    assert rows_of(stack, partition) == (rows, rows, rows)
    logs = (stack.airflow_home / "logs").rglob("attempt=*.log")
    log = "".join(p.read_text() for p in logs if "run_id=claude_lost" in str(p) and "task_id=batch.submit" in str(p))
    assert log.count("adopting") >= rows // 20, "each submit adopted its batch"
