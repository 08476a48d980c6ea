"""What the Airflow UI shows: the trigger form's Params, the batch link, progress lines and mapped-instance names."""

import json
from types import SimpleNamespace

import pytest

from batchkit.dev.devstack import REPO
from openai_batch.links import OpenAIBatchLink, base_url_of, batch_url
from openai_batch.statuses import progress


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags")).dags["openai_batch_inference"]


def test_every_param_explains_itself_in_the_trigger_form(dag):
    for name, param in dag.params.items():
        assert param.description and {"title", "section"} <= param.schema.keys(), name
    assert {p.schema["section"] for p in dag.params.values()} == {
        "Input",
        "Requests",
        "Structured output",
        "Limits and retries",
        "Warehouse",
        "Cost",
        "Run",
    }
    param = dag.params.get_param
    assert param("prompt_template").schema["format"] == param("system_prompt").schema["format"] == "multiline"
    assert all(word in param("warehouse_conn_id").description for word in ("postgres", "redshift", "DuckDB"))
    assert dag.doc_md.lstrip().startswith("# openai_batch_inference")
    assert all(task.doc_md for task in dag.tasks)


def test_mapped_instances_are_named_after_their_batch_file(dag):
    env = dag.get_template_env()  # native rendering, as on the worker
    batch_file = {"index": 3, "path": "s3://lake/staging/run/inputs/batch-00003.jsonl", "requests": 50_000}
    for task_id in ("batch.submit", "batch.wait", "batch.collect"):
        template = dag.get_task(task_id).map_index_template
        rendered = env.from_string(template).render({"task": SimpleNamespace(batch_file=batch_file)})
        assert rendered == "batch-00003 · 50,000 req", task_id


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (None, "https://platform.openai.com/batches/batch_1"),
        ("https://api.openai.com/v1", "https://platform.openai.com/batches/batch_1"),
        ("http://127.0.0.1:8013/v1/", "http://127.0.0.1:8013/v1/batches/batch_1"),
        ("https://user:secret@proxy.example/v1?x=1", "https://proxy.example/v1/batches/batch_1"),
    ],
)
def test_batch_url(base_url, expected):
    assert batch_url(base_url, "batch_1") == expected


def test_the_link_reads_the_connections_base_url_never_its_key(monkeypatch):
    from airflow.sdk import Connection

    extra = {"openai_client_kwargs": {"base_url": "http://emu:8013/v1"}}
    conn = Connection(conn_id="emu", conn_type="openai", host="https://api.openai.com/v1", password="sk-secret")
    assert base_url_of(conn) == "https://api.openai.com/v1"
    conn.extra = json.dumps(extra)
    assert base_url_of(conn) == "http://emu:8013/v1"
    monkeypatch.setenv("AIRFLOW_CONN_EMU", json.dumps({"conn_type": "openai", "password": "sk-secret", "extra": extra}))
    link = OpenAIBatchLink()
    assert link.get_link(SimpleNamespace(batch_id="batch_9", conn_id="emu"), ti_key=None) == (
        "http://emu:8013/v1/batches/batch_9"
    )
    assert link.get_link(SimpleNamespace(batch_id=None, conn_id="emu"), ti_key=None) == ""  # not created yet


def test_progress_shows_counts_percentage_and_an_eta_from_the_rate_so_far():
    counts = {"completed": 1200, "failed": 30, "total": 5000}
    assert progress("in_progress", counts, 1000.0, 1123.0) == (
        "in_progress: 1200/30/5000 completed/failed/total (24.6%), ETA 0:06:17"  # 3770 left at 10 per second
    )
    assert progress("in_progress", {"completed": 0, "failed": 0, "total": 10}, 1000.0, 1100.0).endswith("ETA unknown")
    assert progress("validating", {"completed": 0, "failed": 0, "total": 0}, None, 1.0) == (
        "validating: 0/0/0 completed/failed/total (0.0%)"
    )
    assert progress("completed", {"completed": 9, "failed": 1, "total": 10}, 1.0, 2.0) == (
        "completed: 9/1/10 completed/failed/total (100.0%)"
    )
    assert progress("validating", None, None, 1.0) == "validating: no request counts yet"
