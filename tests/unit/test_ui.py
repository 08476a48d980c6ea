"""What the Airflow UI shows: the trigger form's Params, the DAG's and tasks' docs, progress lines."""

from pathlib import Path

import pytest

from openai_batch.statuses import progress

REPO = Path(__file__).resolve().parents[2]


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
        "Run",
    }
    param = dag.params.get_param
    assert param("prompt_template").schema["format"] == param("system_prompt").schema["format"] == "multiline"
    assert all(word in param("warehouse_conn_id").description for word in ("postgres", "redshift", "DuckDB"))
    assert dag.doc_md.lstrip().startswith("# openai_batch_inference")
    assert all(task.doc_md for task in dag.tasks)


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
