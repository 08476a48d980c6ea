"""API faults in a real DAG run: 30% of lines fail with 429/500, half of all batch creations are refused with
429 (a storm on create) and 20% of every other API call fails with 429/500. Refused creations are retried a
few times in place, then after a wait on the triggerer.

The run must succeed with every row loaded exactly once, no batch key used twice (no request billed twice),
each successful answer loaded once, and lines that failed all attempts loaded as errors.
"""

from collections import Counter

import duckdb

from tests.helpers import emulator_objects, running_stack

DAG_ID = "openai_batch_inference"
ROWS, PER_FILE, MAX_ATTEMPTS = 1500, 500, 4


def test_line_failures_and_429_storms(tmp_path_factory):
    args = (
        *("--line-failure-rate", "0.3", "--create-error-rate", "0.5", "--api-error-rate", "0.2"),
        *("--seconds-per-request", "0.002", "--validation-seconds", "0", "--seed", "3"),
    )
    with running_stack(
        tmp_path_factory.mktemp("faults"),
        {"2026-11-24": ROWS},
        DAG_ID,
        poll_seconds=2,
        emulator_args=args,
        extra_env={"OPENAI_BATCH_QUEUE_WAIT_SECONDS": "5", "OPENAI_BATCH_TASK_RETRIES": "4"},  # faults by design
    ) as stack:
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
