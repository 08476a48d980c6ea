"""The main DAG end to end on real Airflow components: api-server, scheduler, dag-processor and triggerer
(LocalExecutor, SQLite) against the emulator, with DuckDB as the warehouse.

The emulator fails 5% of lines with 429/500 so the collect step's resubmission runs too, and makes 10% of
structured answers invalid (truncated, refused, off-schema). Image inputs and moderations run on small partitions
of their own (``inputs_runs``), loaded into tables of their own.
"""

import re
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from batchkit.dev.devstack import Stack
from batchkit.sentiment import SENTIMENT_SCHEMA
from tests.helpers import emulator_objects, running_stack
from tests.integration import inputs_runs
from tests.integration.inputs_runs import write_catalogue, write_posts
from tests.integration.receivers import Receivers

DAG_ID = "openai_batch_inference"
ROWS, PER_FILE = 3000, 1000
STRUCTURED, STRUCTURED_ROWS = "2026-11-25", 600
CAPPED = "2026-11-26"
UI, UI_ROWS = "2026-11-27", 300
FAST, FAST_FILES = "2026-11-28", 8  # 8 batch files of 50 requests: over within seconds of each deferral
IMAGES, POSTS = "2026-11-29", "2026-11-30"  # image inputs and moderations (inputs_runs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, receivers):
    args = ("--seconds-per-request", "0.004", "--line-failure-rate", "0.05", "--validation-seconds", "1")
    args += ("--invalid-output-rate", "0.1")  # structured answers only
    partitions = {"2026-11-24": ROWS, STRUCTURED: STRUCTURED_ROWS, CAPPED: 300, UI: UI_ROWS, FAST: FAST_FILES * 50}
    _, notify = receivers  # notifications of this stack's runs go to local SMTP and webhook receivers
    env = {**notify, "OPENAI_BATCH_TASK_MEMORY_MB": "1"}  # the merge's smallest buckets: several at 3,000 rows
    env["OPENAI_BATCH_ALLOWED_TABLES"] = "review_sentiment,product_photos,moderated_posts"
    with running_stack(
        tmp_path_factory.mktemp("stack"), partitions, DAG_ID, poll_seconds=2, emulator_args=args, extra_env=env
    ) as stack:
        yield stack


def loaded(stack: Stack, partition: str) -> tuple[int, int, dict[str, int]]:
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT review_id) FROM review_sentiment WHERE partition_key = ?", [partition]
        ).fetchone()
        statuses = dict(
            con.execute(
                "SELECT status, count(*) FROM review_sentiment WHERE partition_key = ? GROUP BY 1", [partition]
            ).fetchall()
        )
    return total, distinct, statuses


def report_of(stack: Stack, partition: str, run_id: str) -> tuple[str, bytes]:
    folder = stack.data_dir / "staging" / DAG_ID / partition / run_id / "report"
    return (folder / "report.html").read_text(), (folder / "report.png").read_bytes()


def test_run_defers_on_the_triggerer_loads_every_row_once_and_reruns_idempotently(stack):
    conf = {"partition": "2026-11-24", "max_requests_per_file": PER_FILE}
    stack.trigger(DAG_ID, "it_1", conf)
    run = stack.wait_for_run(DAG_ID, "it_1", timeout=480, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    assert ("batch.submit", "deferred") in run["seen"]
    trigger_logs = list((stack.airflow_home / "logs").rglob("run_id=it_1/task_id=batch.submit/*/*.trigger.*.log"))
    assert trigger_logs, "no trigger log: the wait did not run on the triggerer"
    assert any(
        "openai_batch.triggers.OpenAIBatchStatusTrigger" in p.read_text() and "completed/failed/total" in p.read_text()
        for p in trigger_logs
    )
    assert len([t for t in run["tasks"] if t["task_id"] == "batch.submit"]) == ROWS // PER_FILE

    total, distinct, statuses = loaded(stack, "2026-11-24")
    assert total == ROWS and distinct == ROWS
    load_log = "".join(p.read_text() for p in (stack.airflow_home / "logs").rglob("run_id=it_1/task_id=load/*.log"))
    buckets = re.search(r"onto the rows in (\d+) bucket", load_log)
    assert buckets and int(buckets.group(1)) > 1, "the merge did not spread the partition over buckets"
    events = stack.api("GET", "/api/v2/assets/events").json()["asset_events"]  # the alias names the table loaded
    assert [e["uri"] for e in events] == [f"duckdb:{stack.duckdb_path.resolve()}/review_sentiment"]
    assert events[0]["extra"]["rows"] == ROWS
    assert statuses.get("ok", 0) >= ROWS * 0.99  # 5% injected failures were resubmitted
    created = emulator_objects(stack, "batches")
    originals = [b for b in created if "attempt" not in (b["metadata"] or {})]
    assert len(originals) == ROWS // PER_FILE and len(created) > len(originals)  # retry batches ran
    for batch in originals:
        meta = batch["metadata"]
        assert meta["airflow_dag_id"] == DAG_ID and meta["airflow_run_id"] == "it_1"
        assert meta["partition"] == "2026-11-24" and re.fullmatch(r"[0-9a-f]{32}", meta["file_sha256"])

    unanswered = ROWS - statuses.get("ok", 0)  # lines still 429/500 after every attempt
    stack.clear(DAG_ID, "it_1")
    rerun = stack.wait_for_run(DAG_ID, "it_1", timeout=480, progress=lambda message: None)
    assert rerun["state"] == "success", rerun["tasks"]
    new = [b for b in emulator_objects(stack, "batches") if b["id"] not in {c["id"] for c in created}]
    first_tries = [b for b in new if "attempt" not in (b["metadata"] or {})]
    assert sum(b["request_counts"]["total"] for b in first_tries) == unanswered  # answered lines are never re-sent
    assert loaded(stack, "2026-11-24")[:2] == (ROWS, ROWS)


def test_fast_batches_resume_on_the_first_try_with_retries_at_zero(stack):
    """Batches over within seconds of their deferral: no task loses a try to the scheduler's stale executor event
    (the stack runs with task retries 0, so any lost try fails the run)."""
    conf = {"partition": FAST, "max_requests_per_file": 50, "max_attempts": 1, "max_error_rate": 1.0}  # no resends
    stack.trigger(DAG_ID, "it_fast", conf)
    run = stack.wait_for_run(DAG_ID, "it_fast", timeout=420, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    submits = [t for t in run["tasks"] if t["task_id"] == "batch.submit"]
    assert len(submits) == FAST_FILES and ("batch.submit", "deferred") in run["seen"]
    assert {t["task_id"]: t["try_number"] for t in run["tasks"] if t["try_number"] != 1} == {}
    assert loaded(stack, FAST)[:2] == (FAST_FILES * 50, FAST_FILES * 50)


@pytest.mark.parametrize(
    ("run_id", "conf", "refusal"),
    [
        ("it_bad_model", {"model": "gpt-imaginary"}, "model 'gpt-imaginary' does not exist"),
        ("it_bad_table", {"target_table": "main.users"}, "target_table 'main.users' is not allowed"),
        ("it_bad_conn", {"warehouse_conn_id": "dwh"}, "warehouse_conn_id 'dwh' is not allowed"),
    ],
)
def test_what_would_refuse_the_run_fails_the_split_before_anything_is_submitted(stack, run_id, conf, refusal):
    before = len(emulator_objects(stack, "batches"))
    stack.trigger(DAG_ID, run_id, {"partition": "2026-11-24", **conf})
    run = stack.wait_for_run(DAG_ID, run_id, timeout=240, progress=lambda message: None)
    assert run["state"] == "failed"
    assert {t["task_id"]: t["state"] for t in run["tasks"]}["split"] == "failed"
    assert len(emulator_objects(stack, "batches")) == before
    log = next(Path(stack.airflow_home / "logs").rglob(f"run_id={run_id}/task_id=split/*.log")).read_text()
    assert refusal in log


def test_an_output_schema_loads_typed_columns_marks_invalid_answers_and_resends_truncated_ones(stack):
    conf = {"partition": STRUCTURED, "output_schema": SENTIMENT_SCHEMA, "max_invalid_output_rate": 0.2}
    stack.trigger(DAG_ID, "structured_1", conf)
    run = stack.wait_for_run(DAG_ID, "structured_1", progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        rows = con.execute(
            "SELECT status, error_code, label, confidence, response_text, attempts FROM review_sentiment "
            "WHERE partition_key = ?",
            [STRUCTURED],
        ).fetchall()
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'review_sentiment'"
            ).fetchall()
        )
        ledger = stack.data_dir / "staging" / DAG_ID / STRUCTURED / "_ledger"
        truncated = con.execute(
            "SELECT count(DISTINCT custom_id) FROM read_parquet(?) WHERE error_code = 'output_truncated'",
            [f"{ledger}/**/*.parquet"],
        ).fetchone()[0]
    assert (types["label"], types["confidence"]) == ("VARCHAR", "DOUBLE")
    assert len(rows) == STRUCTURED_ROWS
    ok = [r for r in rows if r[0] == "ok"]
    invalid = [r for r in rows if r[0] == "invalid_output"]
    errors = [r for r in rows if r[0] == "error"]  # the emulator's 5% line failures, a few left after 3 tries
    assert len(ok) + len(invalid) + len(errors) == STRUCTURED_ROWS and len(errors) < 0.02 * STRUCTURED_ROWS
    assert all(
        label in ("positive", "negative", "neutral") and 0 <= confidence <= 1 for _, _, label, confidence, *_ in ok
    )
    assert 0 < len(invalid) < 0.2 * STRUCTURED_ROWS
    assert {code for _, code, *_ in invalid} <= {"output_refused", "output_schema_mismatch", "output_truncated"}
    assert all(label is None and confidence is None for _, _, label, confidence, *_ in invalid)
    assert any(text for *_, text, _ in invalid if text), "an invalid answer keeps its raw text"
    resent = [r for r in ok if r[5] > 1]
    assert truncated > 0 and resent, "truncated answers were sent again and answered"
    assert max(r[5] for r in rows) <= 3, "no request is sent more than max_attempts (3) times"

    load = stack.xcom(DAG_ID, "structured_1", "load")
    assert load["results_invalid_output"] == len(invalid) and load["results_ok"] == len(ok)
    assert load["cost_usd"] > 0 and load["usage"]["prompt_tokens"] > 0, load["usage"]
    html, png = report_of(stack, STRUCTURED, "structured_1")
    assert png.startswith(b"\x89PNG") and "<th>outcome</th><td>success</td>" in html
    assert f"${load['cost_usd']:,.4f}" in html, "the report's actual cost is the load's"
    assert f"<td>output_refused</td><td>{sum(r[1] == 'output_refused' for r in invalid):,}</td>" in html


def test_answers_the_table_could_not_hold_are_refused_before_anything_is_submitted(stack):
    """After the structured run made ``confidence`` a DOUBLE column, a schema typing it as a string is refused by
    the split (the load would refuse it after the batches were paid for)."""
    schema = {**SENTIMENT_SCHEMA, "properties": {**SENTIMENT_SCHEMA["properties"], "confidence": {"type": "string"}}}
    before = len(emulator_objects(stack, "batches"))
    stack.trigger(DAG_ID, "it_bad_schema", {"partition": CAPPED, "output_schema": schema})
    run = stack.wait_for_run(DAG_ID, "it_bad_schema", timeout=240, progress=lambda message: None)
    assert run["state"] == "failed"
    assert {t["task_id"]: t["state"] for t in run["tasks"]}["split"] == "failed"
    assert len(emulator_objects(stack, "batches")) == before
    log = "".join(p.read_text() for p in (stack.airflow_home / "logs").rglob("run_id=it_bad_schema/task_id=split/*"))
    assert "incompatible schema change for table review_sentiment" in log and "'confidence' is DOUBLE" in log


def test_a_run_over_its_budget_stops_before_anything_is_submitted(stack):
    conf = {"partition": CAPPED, "max_cost_usd": 0.001, "body_options": {"max_tokens": 20}}
    stack.trigger(DAG_ID, "capped_1", conf)
    run = stack.wait_for_run(DAG_ID, "capped_1", progress=lambda message: None)
    assert run["state"] == "failed"
    split = next(t for t in run["tasks"] if t["task_id"] == "split")
    assert split["state"] == "failed"
    log = "".join(p.read_text() for p in (stack.airflow_home / "logs").rglob("run_id=capped_1/task_id=split/*.log"))
    assert re.search(r"estimated cost \$0\.0\d+ is over max_cost_usd \$0\.00", log), log[-2000:]
    assert "300 requests" in log and "Nothing was submitted" in log
    assert not [b for b in emulator_objects(stack, "batches") if b["metadata"]["airflow_run_id"] == "capped_1"]
    assert loaded(stack, CAPPED) == (0, 0, {})
    html, png = report_of(stack, CAPPED, "capped_1")
    assert "<th>outcome</th><td>failed: " in html and "split" in html and png.startswith(b"\x89PNG")
    assert "<th>requests (split)</th><td>300 in 1 file(s)</td>" in html, "the split's figures are in the report"


def test_a_dry_run_shows_the_cost_in_the_log_and_the_report_and_submits_nothing(stack):
    stack.trigger(DAG_ID, "dry_1", {"partition": CAPPED, "dry_run": True, "expected_output_tokens": 3})
    run = stack.wait_for_run(DAG_ID, "dry_1", progress=lambda message: None)
    assert run["state"] == "success"
    states = {t["task_id"]: t["state"] for t in run["tasks"]}
    assert (states["split"], states["load"], states["report"]) == ("success", "skipped", "success")
    log = "".join(p.read_text() for p in (stack.airflow_home / "logs").rglob("run_id=dry_1/task_id=split/*.log"))
    assert re.search(r"estimated cost: 300 requests, ~[\d,]+ input tokens \+ up to 900 output tokens", log), log[-2000:]
    assert "DRY RUN: nothing is submitted" in log
    assert not [b for b in emulator_objects(stack, "batches") if b["metadata"]["airflow_run_id"] == "dry_1"]
    html, _ = report_of(stack, CAPPED, "dry_1")
    assert "<th>outcome</th><td>dry run: nothing submitted</td>" in html
    estimate = stack.xcom(DAG_ID, "dry_1", "split", key="split")["estimate"]
    assert estimate["output_tokens"] == 900 and f"${estimate['usd']:,.4f}" in html


def test_the_ui_names_mapped_instances_after_their_files_and_links_each_batch(stack):
    stack.trigger(DAG_ID, "ui_1", {"partition": UI, "max_requests_per_file": 100})
    run = stack.wait_for_run(DAG_ID, "ui_1", timeout=480, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    names = {(t["task_id"], t["map_index"]): t["rendered_map_index"] for t in run["tasks"]}
    for task_id in ("batch.submit", "batch.wait", "batch.collect"):
        assert [names[task_id, i] for i in range(3)] == [f"batch-0000{i} · 100 req" for i in range(3)]
    base = f"/api/v2/dags/{DAG_ID}/dagRuns/ui_1/taskInstances"
    emulator = stack.emulator.base_url.rstrip("/")
    for i in range(3):
        batch_id = stack.api("GET", f"{base}/batch.submit/xcomEntries/return_value?map_index={i}").json()["value"]
        for task_id in ("batch.submit", "batch.wait"):
            links = stack.api("GET", f"{base}/{task_id}/links?map_index={i}").json()["extra_links"]
            assert links == {"OpenAI batch": f"{emulator}/batches/{batch_id}"}
        assert httpx.get(links["OpenAI batch"], headers={"Authorization": "Bearer emulator"}).json()["id"] == batch_id
    report = stack.api("GET", f"{base}/report/links").json()["extra_links"]["Run report"]
    assert report == f"file://{stack.data_dir}/staging/{DAG_ID}/{UI}/ui_1/report/report.html"


def test_an_image_column_sends_images_beside_the_prompt_and_loads_the_answers(stack):
    sizes = write_catalogue(stack.data_dir / "catalogue" / f"dt={IMAGES}")
    conf = {**inputs_runs.PHOTOS, "partition": IMAGES, "source": f"{stack.data_dir}/catalogue/dt={{partition}}"}
    stack.trigger(DAG_ID, "images_1", conf)
    run = stack.wait_for_run(DAG_ID, "images_1", timeout=300, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    estimate = stack.xcom(DAG_ID, "images_1", "split", key="split")["estimate"]
    print("images:", inputs_runs.check_photos(stack.duckdb_path, IMAGES, sizes, estimate))


def test_a_moderations_run_loads_flagged_categories_and_scores(stack):
    write_posts(stack.data_dir / "posts" / f"dt={POSTS}")
    conf = {**inputs_runs.POSTS, "partition": POSTS, "source": f"{stack.data_dir}/posts/dt={{partition}}"}
    stack.trigger(DAG_ID, "moderation_1", conf)
    run = stack.wait_for_run(DAG_ID, "moderation_1", timeout=300, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    ok = inputs_runs.check_posts(stack.duckdb_path, POSTS)
    load = stack.xcom(DAG_ID, "moderation_1", "load")
    assert load["results_ok"] == ok and load["cost_usd"] == 0  # moderations are free


def notified(received: Receivers, run_id: str) -> tuple[str, str]:
    """The mail and the Slack text about ``run_id`` (the dag-processor sends them a little after the run ends)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (
        any(run_id in m[1] for m in received.mails) and any(run_id in body for _, body in received.posts)
    ):
        time.sleep(1)
    return received.about(run_id)


def test_failed_and_degraded_runs_are_notified_by_mail_and_slack(stack, receivers):
    received, _ = receivers
    for text in notified(received, "it_bad_model"):
        assert f"[failed] {DAG_ID} run it_bad_model (partition 2026-11-24)" in text
        assert "Failed task: split" in text and "model 'gpt-imaginary' does not exist" in text
        assert "No load numbers" in text and f"{stack.api_url}/dags/{DAG_ID}/runs/it_bad_model" in text
    for text in notified(received, "structured_1"):
        assert f"[degraded] {DAG_ID} run structured_1 (partition {STRUCTURED})" in text
        assert "got an invalid output, over 2.0%" in text and f"input rows: {STRUCTURED_ROWS}" in text
        assert "cost (USD): $" in text and "report: " in text
