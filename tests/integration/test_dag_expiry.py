"""Expired batches in a real run: every batch (retries too) stops halfway and expires. The sensor hands the
partial results on, collect resubmits only the unfinished lines up to max_attempts, and every row is loaded
once: answered, or with error code batch_expired. No batch is resubmitted more than the attempts allow."""

import duckdb

from ..helpers import emulator_objects, running_stack

DAG_ID = "openai_batch_inference"
ROWS, PER_FILE = 600, 300


def test_expired_batches_are_collected_and_resubmitted(tmp_path_factory):
    args = ("--expire-rate", "1", "--completion-window-seconds", "6", "--seconds-per-request", "0.005")
    with running_stack(
        tmp_path_factory.mktemp("expiry"), {"2026-11-24": ROWS}, DAG_ID, poll_seconds=2, emulator_args=args
    ) as stack:
        conf = {"partition": "2026-11-24", "max_requests_per_file": PER_FILE, "max_attempts": 3, "max_error_rate": 0.25}
        stack.trigger(DAG_ID, "expiry_1", conf)
        run = stack.wait_for_run(DAG_ID, "expiry_1", timeout=420, progress=lambda message: None)
        assert run["state"] == "success", run["tasks"]
        batches = emulator_objects(stack, "batches")
        assert {b["status"] for b in batches} == {"expired"}
        assert len(batches) == 3 * (ROWS // PER_FILE)  # one original and two resubmissions per file, no more
        with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
            total, distinct = con.execute("SELECT count(*), count(DISTINCT review_id) FROM review_sentiment").fetchone()
            errors = dict(
                con.execute(
                    "SELECT error_code, count(*) FROM review_sentiment WHERE status = 'error' GROUP BY 1"
                ).fetchall()
            )
        assert (total, distinct) == (ROWS, ROWS)
        assert set(errors) == {"batch_expired"} and 0 < errors["batch_expired"] <= ROWS // 8 + 2 * (ROWS // PER_FILE)
