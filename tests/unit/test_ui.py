"""What the Airflow UI shows: the trigger form's Params and the DAG's and tasks' docs."""

from pathlib import Path

import pytest

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
