"""A batch cancelled by someone else mid-run: its partial output is kept, its unfinished lines are loaded as
errors (batch_cancelled) and not resubmitted, and max_error_rate decides the run's outcome."""

import time

import duckdb
import httpx

from tests.helpers import running_stack

DAG_ID = "openai_batch_inference"
ROWS = 400


def test_external_cancel_keeps_partial_results(tmp_path_factory):
    with running_stack(
        tmp_path_factory.mktemp("cancel"),
        {"2026-11-24": ROWS},
        DAG_ID,
        poll_seconds=2,
        emulator_args=("--seconds-per-request", "0.05"),
    ) as stack:
        stack.trigger(DAG_ID, "cancel_1", {"partition": "2026-11-24", "max_error_rate": 1.0})
        api = stack.emulator.base_url
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            batches = httpx.get(f"{api}/batches").json()["data"]
            if batches and batches[0]["request_counts"]["completed"] >= 20:
                break
            time.sleep(0.5)
        assert httpx.post(f"{api}/batches/{batches[0]['id']}/cancel").json()["status"] == "cancelling"

        run = stack.wait_for_run(DAG_ID, "cancel_1", timeout=300, progress=lambda message: None)
        assert run["state"] == "success", run["tasks"]
        assert [b["status"] for b in httpx.get(f"{api}/batches").json()["data"]] == ["cancelled"]  # not resubmitted
        with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
            rows = dict(
                con.execute("SELECT coalesce(error_code, status), count(*) FROM review_sentiment GROUP BY 1").fetchall()
            )
        assert sum(rows.values()) == ROWS and set(rows) == {"ok", "batch_cancelled"}
        assert rows["ok"] >= 20 and rows["batch_cancelled"] > 0
