"""The submit task's process is killed (SIGKILL) at the two moments that could bill a file twice, inside a real
DAG run, and Airflow retries it:

- file 0: after its upload was stored but before the batch was created (the emulator answers uploads late);
- file 1: after its batch was created but before the task recorded it (the emulator answers creates late).

Each file still gets exactly one batch: file 0's retry uploads again (the orphan upload costs nothing) and
creates the batch; file 1's retry finds its batch by the key in its metadata and adopts it.
"""

import os
import signal
import time

import duckdb

from tests.helpers import emulator_objects, running_stack

DAG_ID = "openai_batch_inference"
ROWS, PER_FILE = 800, 400


def kill_submit(stack, map_index: int) -> int:
    """SIGKILL the running process of batch.submit[map_index]; returns the try that was killed."""
    for ti in stack.task_states(DAG_ID, "kill_1"):
        if ti["task_id"] == "batch.submit" and ti["map_index"] == map_index and ti["state"] == "running" and ti["pid"]:
            os.kill(ti["pid"], signal.SIGKILL)
            return ti["try_number"]
    return 0


def test_worker_killed_between_upload_and_create_and_between_create_and_xcom(tmp_path_factory):
    args = ("--upload-delay-seconds", "5", "--create-delay-seconds", "5", "--validation-seconds", "0")
    with running_stack(
        tmp_path_factory.mktemp("worker_crash"),
        {"2026-11-24": ROWS},
        DAG_ID,
        poll_seconds=2,
        emulator_args=args,
        extra_env={
            "OPENAI_BATCH_TASK_RETRIES": "4",  # the killed worker fails its tries on purpose
            "OPENAI_BATCH_KEEP_VENDOR_FILES": "true",  # the test counts the files uploaded
        },
    ) as stack:
        stack.trigger(DAG_ID, "kill_1", {"partition": "2026-11-24", "max_requests_per_file": PER_FILE})
        killed: dict[int, int] = {}
        deadline = time.monotonic() + 120
        while len(killed) < 2 and time.monotonic() < deadline:
            uploads = [f["filename"] for f in emulator_objects(stack, "files") if f["purpose"] == "batch"]
            if 0 not in killed and any(name.endswith("batch-00000.jsonl") for name in uploads):
                assert not any(
                    b["metadata"]["airflow_task"].endswith("[0]") for b in emulator_objects(stack, "batches")
                )
                killed[0] = kill_submit(stack, 0)
            created = [b["metadata"]["airflow_task"] for b in emulator_objects(stack, "batches")]
            if 1 not in killed and "batch.submit[1]" in created:
                killed[1] = kill_submit(stack, 1)
            time.sleep(0.2)
        assert killed == {0: 1, 1: 1}, f"both submit tasks must be killed in their first try: {killed}"

        run = stack.wait_for_run(DAG_ID, "kill_1", timeout=300, progress=lambda message: None)
        assert run["state"] == "success", run["tasks"]
        tries = {
            t["map_index"]: t["try_number"]
            for t in stack.task_states(DAG_ID, "kill_1")
            if t["task_id"] == "batch.submit"
        }
        # each killed submit succeeded on a retry; under load one more try can happen: Airflow 3.3.2 may process the
        # deferral's executor event after the task already resumed, and marks the running resume for retry
        assert sorted(tries) == [0, 1] and all(2 <= n <= 3 for n in tries.values()), tries

        batches = emulator_objects(stack, "batches")
        assert sorted(b["metadata"]["airflow_task"] for b in batches) == ["batch.submit[0]", "batch.submit[1]"]
        assert {b["status"] for b in batches} == {"completed"}
        uploads = [f["filename"] for f in emulator_objects(stack, "files") if f["purpose"] == "batch"]
        assert sum(name.endswith("batch-00000.jsonl") for name in uploads) == 2  # the orphan + the used one
        assert sum(name.endswith("batch-00001.jsonl") for name in uploads) == 1
        with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
            assert con.execute(
                "SELECT count(*), count(DISTINCT review_id), count(*) FILTER (WHERE status = 'ok') "
                "FROM review_sentiment"
            ).fetchone() == (ROWS, ROWS, ROWS)
