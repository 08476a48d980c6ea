"""A user's own DAGs beside the shipped one, on one stack of the real Airflow components against the emulator:

- two pipelines of ``openai_batch.pipeline.batch_pipeline`` in one DAG of a user's own: different sources, prompts
  and tables; each loads its rows once into its own table, from its own staging area and ledger, between an
  upstream and a downstream task of the DAG. A clear of the whole run sends nothing again;
- the shipped DAG with a batch cancelled by someone else mid-run: its partial output is kept, its unfinished lines
  are loaded as errors (batch_cancelled) and not resubmitted, and max_error_rate decides the run's outcome;
- the same pipeline on the other vendors the emulator speaks, chosen by connection only: Anthropic Message Batches
  (an ``anthropic`` connection) and Azure OpenAI (an ``openai`` connection on its v1 paths), with typed columns from
  an output schema; two runs of one partition at once make one batch per file, and a clear after success sends
  nothing again. Once recorded, every Anthropic message batch and every Azure batch file is deleted at the emulator;
  a clear of the wait and collect steps of a deleted Anthropic batch reads its answers from the ledger.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

from batchkit.dev.devstack import REPO, Stack
from batchkit.dev.sample import write_sample_partition
from batchkit.emulator.launcher import free_port
from tests.helpers import emulator_objects, running_stack

DAG_ID = "two_pipelines"
SHIPPED = "openai_batch_inference"
PARTITION = "2026-11-25"
CANCELLED = {"2026-11-24": 400}  # the shipped DAG's partition whose batch someone cancels
ROWS = {"reviews": 40, "tickets": 30}
TABLES = {"reviews": "review_echo", "tickets": "ticket_summary"}
DAG_FILE = """
from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from openai_batch.pipeline import batch_pipeline
from openai_batch.settings import PipelineSettings

SETTINGS = PipelineSettings.from_env(allowed_tables=("review_echo", "ticket_summary"))  # given wins over the env
DATA = SETTINGS.data_root

with DAG(
    "two_pipelines", schedule=None, start_date=datetime(2026, 11, 1), render_template_as_native_obj=True,
    params={"partition": None},
) as dag:
    reviews = batch_pipeline(
        "reviews", settings=SETTINGS, source=f"{DATA}/reviews/dt={{partition}}", target_table="review_echo",
        prompt_template="", prompt_column="text", system_prompt="", max_attempts=1,
    )
    tickets = batch_pipeline(
        "tickets", settings=SETTINGS, source=f"{DATA}/tickets/dt={{partition}}", target_table="ticket_summary",
        prompt_template="Summarise this ticket: {text}", system_prompt="", max_attempts=1,
    )
    EmptyOperator(task_id="start") >> [reviews, tickets] >> EmptyOperator(task_id="done")
"""


VENDOR_DAG_ID, VENDOR_TABLES, PER_FILE = "vendor_pipelines", {"anthropic": "claude_sentiment", "azure": "azure_sentiment"}, 20
VENDOR_DAG_FILE = """
from datetime import datetime

from airflow.sdk import DAG

from batchkit.sentiment import SENTIMENT_SCHEMA
from openai_batch.pipeline import batch_pipeline
from openai_batch.settings import PipelineSettings

SETTINGS = PipelineSettings.from_env(allowed_tables=("claude_sentiment", "azure_sentiment"))
SOURCE = f"{SETTINGS.data_root}/reviews/dt={{partition}}"

with DAG(
    "vendor_pipelines", schedule=None, start_date=datetime(2026, 11, 1), render_template_as_native_obj=True,
    params={"partition": None},
) as dag:
    for group, conn_id, model, table in (
        ("anthropic", "anthropic_emulator", "claude-haiku-4-5", "claude_sentiment"),
        ("azure", "azure_emulator", "gpt-4o-mini", "azure_sentiment"),  # a deployment named after its model
    ):
        batch_pipeline(
            group, settings=SETTINGS, source=SOURCE, target_table=table, conn_id=conn_id, model=model,
            output_schema=SENTIMENT_SCHEMA, max_requests_per_file=20, max_attempts=1,
        )
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("pipelines")
    dags = root / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(DAG_FILE)
    (dags / f"{SHIPPED}.py").write_bytes((REPO / "dags" / f"{SHIPPED}.py").read_bytes())
    (dags / f"{VENDOR_DAG_ID}.py").write_text(VENDOR_DAG_FILE)
    write_sample_partition(root / "data" / "tickets" / f"dt={PARTITION}", ROWS["tickets"], files=1, seed=99)
    args = ("--seconds-per-request", "0.05", "--validation-seconds", "1")  # slow enough to cancel a batch midway
    port = free_port()
    emulator = f"http://127.0.0.1:{port}"
    env = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),  # a user's DAG folder: their DAGs beside a copy of the shipped one
        "AIRFLOW_CONN_ANTHROPIC_EMULATOR": json.dumps({"conn_type": "anthropic", "password": "k", "host": emulator}),
        "AIRFLOW_CONN_AZURE_EMULATOR": json.dumps(
            {"conn_type": "openai", "password": "k", "host": f"{emulator}/openai/v1", "extra": {"vendor": "azure"}}
        ),
        "OPENAI_BATCH_ALLOWED_API_CONNS": "openai_default,anthropic_emulator,azure_emulator",
    }
    partitions = {PARTITION: ROWS["reviews"], **CANCELLED}
    settings = {"poll_seconds": 2, "emulator_args": args, "extra_env": env, "emulator_port": port}
    with running_stack(root, partitions, DAG_ID, **settings) as stack:
        stack.wait_for_dag(SHIPPED)
        yield stack


def batches_of(stack: Stack, dag_id: str) -> list[dict]:
    return [b for b in emulator_objects(stack, "batches") if b["metadata"]["airflow_dag_id"] == dag_id]


def table(stack: Stack, name: str) -> list[tuple]:
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        return con.execute(f"SELECT review_id, status, response_text, partition_key FROM {name}").fetchall()


def test_two_pipelines_load_their_own_rows_once_from_their_own_staging_and_ledgers(stack):
    stack.trigger(DAG_ID, "two_1", {"partition": PARTITION})
    run = stack.wait_for_run(DAG_ID, "two_1", timeout=300, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    states = {t["task_id"]: t["state"] for t in run["tasks"]}
    assert states["start"] == states["done"] == "success"
    assert {t["task_id"]: t["try_number"] for t in run["tasks"] if t["try_number"] != 1} == {}  # retries 0

    for group, rows in ROWS.items():
        loaded = table(stack, TABLES[group])
        assert len(loaded) == len({r[0] for r in loaded}) == rows, group
        assert {r[1] for r in loaded} == {"ok"} and {r[3] for r in loaded} == {PARTITION}
    assert not any(r[2].startswith("echo: Summarise") for r in table(stack, "review_echo"))  # its own prompt
    assert all(r[2].startswith("echo: Summarise this ticket:") for r in table(stack, "ticket_summary"))

    staging = stack.data_dir / "staging" / DAG_ID
    assert sorted(p.name for p in staging.iterdir()) == ["_pipelines"], "nothing at the top-level layout"
    for group in ROWS:
        partition = staging / "_pipelines" / group / PARTITION
        assert (partition / "two_1" / "merged" / "result.parquet").exists()
        assert len(list((partition / "_ledger" / "results").glob("*.parquet"))) == 1
        assert (partition / "two_1" / "report" / "report.html").exists()

    batches = batches_of(stack, DAG_ID)
    tasks = sorted(b["metadata"]["airflow_task"] for b in batches)
    assert tasks == ["reviews.batch.submit[0]", "tickets.batch.submit[0]"]
    assert len({b["metadata"]["batchkit_key"] for b in batches}) == 2
    events = stack.api("GET", "/api/v2/assets/events").json()["asset_events"]
    ours = [e["uri"].rsplit("/", 1)[1] for e in events if e["source_dag_id"] == DAG_ID]
    assert sorted(ours) == sorted(TABLES.values())

    stack.clear(DAG_ID, "two_1")
    rerun = stack.wait_for_run(DAG_ID, "two_1", timeout=300, progress=lambda message: None)
    assert rerun["state"] == "success", rerun["tasks"]
    assert len(batches_of(stack, DAG_ID)) == 2
    for group, rows in ROWS.items():
        assert len(table(stack, TABLES[group])) == rows, "a rerun replaces the partition, every row once"
    assert not Path(staging / PARTITION).exists()


def test_external_cancel_keeps_partial_results(stack):
    (partition, rows), api = next(iter(CANCELLED.items())), stack.emulator.base_url
    stack.trigger(SHIPPED, "cancel_1", {"partition": partition, "max_error_rate": 1.0})
    deadline, batches = time.monotonic() + 120, []
    while time.monotonic() < deadline:
        batches = batches_of(stack, SHIPPED)
        if batches and batches[0]["request_counts"]["completed"] >= 20:
            break
        time.sleep(0.5)
    assert httpx.post(f"{api}/batches/{batches[0]['id']}/cancel").json()["status"] == "cancelling"

    run = stack.wait_for_run(SHIPPED, "cancel_1", timeout=300, progress=lambda message: None)
    assert run["state"] == "success", run["tasks"]
    assert [b["status"] for b in batches_of(stack, SHIPPED)] == ["cancelled"]  # not resubmitted
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        loaded = dict(
            con.execute("SELECT coalesce(error_code, status), count(*) FROM review_sentiment GROUP BY 1").fetchall()
        )
    assert sum(loaded.values()) == rows and set(loaded) == {"ok", "batch_cancelled"}
    assert loaded["ok"] >= 20 and loaded["batch_cancelled"] > 0


def vendor_batches(stack: Stack) -> dict[str, list[dict]]:
    """Every batch the emulator holds per vendor API (Anthropic's message batches, Azure's batches)."""
    base = f"http://127.0.0.1:{stack.emulator.port}"
    anthropic = httpx.get(f"{base}/v1/messages/batches", params={"limit": 100}, headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    azure = httpx.get(f"{base}/openai/v1/batches", params={"limit": 100}, headers={"api-key": "k"})
    return {"anthropic": anthropic.json()["data"], "azure": azure.json()["data"]}


def recorded(stack: Stack, group: str) -> set[str]:
    """The batch ids the ledger's claims of the vendor pipeline ``group`` name."""
    claims = stack.data_dir / "staging" / VENDOR_DAG_ID / "_pipelines" / group / PARTITION / "_ledger" / "batches"
    return {json.loads(p.read_bytes())["batch_id"] for p in claims.glob("*.json")}


def azure_files(stack: Stack) -> list[dict]:
    base = f"http://127.0.0.1:{stack.emulator.port}/openai/v1"
    return httpx.get(f"{base}/files", params={"limit": 100}, headers={"api-key": "k"}).json()["data"]


def clear_tasks(stack: Stack, dag_id: str, run_id: str, task_ids: list[str]) -> None:
    body = {"dag_run_id": run_id, "task_ids": task_ids, "dry_run": False, "only_failed": False,
            "include_downstream": True, "reset_dag_runs": True}  # fmt: skip
    response = stack.api("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body)
    assert response.status_code == 200, response.text


def test_the_pipeline_runs_on_anthropic_and_azure_by_connection_once_per_file(stack):
    rows, files = ROWS["reviews"], ROWS["reviews"] // PER_FILE
    stack.wait_for_dag(VENDOR_DAG_ID)
    for run_id in ("vendors_1", "vendors_2"):  # two runs of one partition at once
        stack.trigger(VENDOR_DAG_ID, run_id, {"partition": PARTITION})
    for run_id in ("vendors_1", "vendors_2"):
        run = stack.wait_for_run(VENDOR_DAG_ID, run_id, timeout=420, progress=lambda message: None)
        assert run["state"] == "success", run["tasks"]
        assert {t["task_id"]: t["try_number"] for t in run["tasks"] if t["try_number"] != 1} == {}  # retries 0
    made = vendor_batches(stack)
    assert {vendor: len(recorded(stack, vendor)) for vendor in VENDOR_TABLES} == {"anthropic": files, "azure": files}
    assert made["anthropic"] == [], "every message batch was recorded, then deleted (a duplicate would be left)"
    assert {b["id"] for b in made["azure"]} == recorded(stack, "azure")  # Azure's batches stay, their files go
    assert all(not (b.get("metadata") or {}).get("attempt") for b in made["azure"])
    assert not azure_files(stack), "a recorded Azure batch's files were left at the vendor"
    for vendor, name in VENDOR_TABLES.items():
        with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
            loaded = con.execute(f"SELECT review_id, status, label, confidence, prompt_tokens FROM {name}").fetchall()
        assert len(loaded) == len({r[0] for r in loaded}) == rows, vendor
        assert {r[1] for r in loaded} == {"ok"}, vendor
        assert {r[2] for r in loaded} <= {"positive", "negative", "neutral"} and all(0 <= r[3] <= 1 for r in loaded)
        assert all(r[4] > 0 for r in loaded), vendor  # usage mapped
        load = stack.xcom(VENDOR_DAG_ID, "vendors_1", f"{vendor}.load")
        assert load["cost_usd"] > 0 and load["estimated_cost_usd"] > 0, vendor  # at the vendor's batch prices
    assert not list(emulator_objects(stack, "batches")) or all(
        b["metadata"]["airflow_dag_id"] != VENDOR_DAG_ID for b in emulator_objects(stack, "batches")
    )  # nothing went to the OpenAI API

    claims = {vendor: recorded(stack, vendor) for vendor in VENDOR_TABLES}
    clear_tasks(stack, VENDOR_DAG_ID, "vendors_2", ["anthropic.batch.wait"])  # its batches are deleted: the ledger
    rerun = stack.wait_for_run(VENDOR_DAG_ID, "vendors_2", timeout=300, progress=lambda message: None)
    assert rerun["state"] == "success", rerun["tasks"]
    cleared = [t for t in rerun["tasks"] if t["task_id"] in ("anthropic.batch.wait", "anthropic.batch.collect")]
    assert len(cleared) == 2 * files and all(t["state"] == "success" and t["try_number"] > 1 for t in cleared)
    stack.clear(VENDOR_DAG_ID, "vendors_1")
    rerun = stack.wait_for_run(VENDOR_DAG_ID, "vendors_1", timeout=300, progress=lambda message: None)
    assert rerun["state"] == "success", rerun["tasks"]
    assert {vendor: recorded(stack, vendor) for vendor in VENDOR_TABLES} == claims  # clears send nothing again
    assert vendor_batches(stack)["anthropic"] == [] and len(vendor_batches(stack)["azure"]) == files
    for name in VENDOR_TABLES.values():
        with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
            assert con.execute(f"SELECT count(*), count(DISTINCT review_id) FROM {name}").fetchone() == (rows, rows)
