"""Crashes during a run, then restarts: Airflow's API server (through which tasks report state and XComs) is
killed with SIGKILL while the submit tasks are running, then the triggerer, the emulator (the OpenAI API) and
the API server again while every submit waits deferred on its batch. The run still succeeds, with no second batch for any file
and every row loaded exactly once."""

import time

import duckdb

from tests.helpers import emulator_objects, running_stack

DAG_ID = "openai_batch_inference"
ROWS, PER_FILE = 1200, 400


def test_triggerer_emulator_and_api_server_crash_mid_wait(tmp_path_factory):
    args = ("--seconds-per-request", "0.05", "--validation-seconds", "1", "--upload-delay-seconds", "4")
    with running_stack(
        tmp_path_factory.mktemp("crash"),
        {"2026-11-24": ROWS},
        DAG_ID,
        poll_seconds=2,
        emulator_args=args,
        extra_env={
            "OPENAI_BATCH_RETRY_DELAY_SECONDS": "2",  # a submit that failed with the API server retries soon
            "OPENAI_BATCH_TASK_RETRIES": "4",  # the killed components fail tries on purpose
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",  # the dead triggerer's waits move on soon
        },
    ) as stack:
        stack.trigger(DAG_ID, "crash_1", {"partition": "2026-11-24", "max_requests_per_file": PER_FILE})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(
                t["task_id"] == "batch.submit" and t["state"] == "running" for t in stack.task_states(DAG_ID, "crash_1")
            ):
                break
            time.sleep(0.3)
        stack.kill("api-server")  # the submit tasks are uploading (answered 4 s late): they report to a dead API
        time.sleep(3)
        stack.restart("api-server")

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            states = [t["state"] for t in stack.task_states(DAG_ID, "crash_1") if t["task_id"] == "batch.submit"]
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
        with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
            assert con.execute(
                "SELECT count(*), count(DISTINCT review_id), count(*) FILTER (WHERE status = 'ok') "
                "FROM review_sentiment"
            ).fetchone() == (ROWS, ROWS, ROWS)
