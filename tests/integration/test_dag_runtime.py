"""The production runtime on the real components. A true in-flight bound: with OPENAI_BATCH_MAX_PARALLEL=2 and
8 batch files, at most 2 batches are ever validating or in progress. Cancellation only when a person asks, with
two triggerers: the triggerer holding the
waits stops answering past its heartbeat, the other takes them over and the first, on resuming, runs ``on_kill``
for each lost trigger (Airflow 3.3), which reads the task's state and keeps the batch: no batch is cancelled
and the run succeeds. Marking a deferred submit (waiting on its
batch) failed cancels its batch."""

import time

import pytest

from batchkit.batch_api import LIVE
from batchkit.dev.devstack import Stack
from tests.helpers import emulator_objects, running_stack

DAG_ID = "openai_batch_inference"
PARTITIONS = {"2026-11-24": 600, "2026-11-25": 300, "2026-11-26": 160, "2026-11-27": 1100}
SETTINGS = {
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "8",  # a silent triggerer loses its triggers
    "OPENAI_BATCH_MAX_PARALLEL": "2",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    args = ("--seconds-per-request", "0.15", "--validation-seconds", "1")  # a 300-line batch runs ~45 s
    with running_stack(
        tmp_path_factory.mktemp("runtime"), PARTITIONS, DAG_ID, poll_seconds=1, emulator_args=args, extra_env=SETTINGS
    ) as stack:
        yield stack


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"waited {timeout:.0f}s for {what}")


def deferred_submits(stack: Stack, run_id: str) -> int:
    return sum(
        1 for t in stack.task_states(DAG_ID, run_id) if t["task_id"] == "batch.submit" and t["state"] == "deferred"
    )


def polling(stack: Stack, run_id: str) -> bool:
    logs = (stack.airflow_home / "logs").rglob(f"run_id={run_id}/task_id=batch.submit/*/*.trigger.*.log")
    return any("completed/failed/total" in p.read_text(errors="replace") for p in logs)


def test_a_triggerer_handover_never_cancels_a_batch(stack):
    stack.trigger(DAG_ID, "ha_1", {"partition": "2026-11-24", "max_requests_per_file": 300})
    wait_until(lambda: deferred_submits(stack, "ha_1") == 2, 180, "both waits to defer")
    stack.add("triggerer", "triggerer2")
    time.sleep(8)  # the second triggerer is up and heartbeating
    stack.pause("triggerer")
    time.sleep(20)  # past the health threshold: triggerer2 takes the triggers over
    stack.resume("triggerer")  # it finds its triggers gone and runs on_kill for each
    run = stack.wait_for_run(DAG_ID, "ha_1", timeout=420, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    batches = [b for b in emulator_objects(stack, "batches") if b["metadata"]["airflow_run_id"] == "ha_1"]
    assert {b["status"] for b in batches} == {"completed"} and len(batches) == 2
    trigger_logs = (stack.airflow_home / "logs").rglob("run_id=ha_1/task_id=batch.submit/*/*.trigger.*.log")
    logs = "".join(p.read_text(errors="replace") for p in trigger_logs)
    # Airflow's own line: the resumed triggerer ran on_kill for a trigger it lost (else the test proved nothing),
    # and ours: on_kill read the task's state and kept the batch
    assert "invoking on_kill" in logs, "the handover's on_kill did not run: the test proved nothing"
    assert "the task is deferred (the trigger moved or its triggerer stopped)" in logs


def test_marking_a_deferred_submit_failed_cancels_its_batch(stack):
    stack.trigger(DAG_ID, "ha_2", {"partition": "2026-11-25", "max_requests_per_file": 300})
    # on_kill runs only on a triggerer that holds the trigger: wait until one polls it
    wait_until(lambda: polling(stack, "ha_2"), 180, "a triggerer to poll the batch")
    response = stack.api(
        "PATCH",
        f"/api/v2/dags/{DAG_ID}/dagRuns/ha_2/taskInstances/batch.submit/0",
        json={"new_state": "failed"},
    )
    assert response.status_code == 200, response.text

    def cancelled() -> bool:
        batches = [b for b in emulator_objects(stack, "batches") if b["metadata"]["airflow_run_id"] == "ha_2"]
        return len(batches) == 1 and batches[0]["status"] in ("cancelling", "cancelled")

    wait_until(
        cancelled, 150, "the batch to be cancelled"
    )  # the triggerer drops the trigger, then reads the state (slow under CI load)


def test_at_most_max_parallel_batches_are_in_flight(stack):
    stack.trigger(DAG_ID, "bound_1", {"partition": "2026-11-26", "max_requests_per_file": 20})  # 8 files
    peak, state, deadline = 0, None, time.monotonic() + 420
    while state not in ("success", "failed") and time.monotonic() < deadline:
        batches = [b for b in emulator_objects(stack, "batches") if b["metadata"]["airflow_run_id"] == "bound_1"]
        peak = max(peak, sum(1 for b in batches if b["status"] in LIVE))
        state = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/bound_1").json().get("state")
        time.sleep(0.3)
    assert state == "success"
    assert len(batches) == 8 and {b["status"] for b in batches} == {"completed"}
    assert 1 <= peak <= 2, f"{peak} batches were in flight at once"


def test_a_partition_needing_more_files_than_airflow_can_map_is_refused_before_any_submit(stack):
    stack.trigger(DAG_ID, "wide_1", {"partition": "2026-11-27", "max_requests_per_file": 1})  # 1,100 files
    run = stack.wait_for_run(DAG_ID, "wide_1", timeout=240, progress=lambda message: None)
    assert run["state"] == "failed"
    assert {t["task_id"]: t["state"] for t in run["tasks"]}["split"] == "failed"
    assert not [b for b in emulator_objects(stack, "batches") if b["metadata"]["airflow_run_id"] == "wide_1"]
    log = "".join(p.read_text() for p in (stack.airflow_home / "logs").rglob("run_id=wide_1/task_id=split/*.log"))
    assert "1,100 rows: at 1 requests per file that is at least 1,100 batch files, over the limit of 1,024" in log
    assert "AIRFLOW__CORE__MAX_MAP_LENGTH" in log
