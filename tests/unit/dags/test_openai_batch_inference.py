"""Every DAG imports without errors, fast (the dag-processor re-parses files all the time)."""

import time

import pytest

from batchkit.dev.devstack import REPO

DAG_FILES = sorted((REPO / "dags").glob("*.py"))


@pytest.fixture(scope="module")
def dagbag_class():
    import airflow.sdk  # noqa: F401  (Airflow itself is loaded once, before timing DAG files)
    from airflow.dag_processing.dagbag import DagBag

    return DagBag


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_fast_and_clean(dagbag_class, dag_file):
    started = time.perf_counter()
    bag = dagbag_class(dag_folder=str(dag_file))
    elapsed = time.perf_counter() - started
    assert bag.import_errors == {}
    assert bag.dags, f"{dag_file.name} defines no DAG"
    assert elapsed < 1.0, f"{dag_file.name} took {elapsed:.2f}s to import"


def test_main_dag_shape(dagbag_class):
    dag = dagbag_class(dag_folder=str(REPO / "dags")).dags["openai_batch_inference"]
    assert set(dag.task_ids) == {
        "split",
        "batch.submit",
        "batch.wait",
        "batch.collect",
        "load",
        "report",
        "prune_staging",
    }
    assert dag.get_task("report").is_teardown, "the report never decides the run's state"
    assert dag.catchup is False and dag.params["model"] == "gpt-4o-mini"
    assert dag.get_task("batch.wait").deferrable
    assert dag.get_task("batch.submit").max_active_tis_per_dagrun >= 1  # submit waits: the in-flight bound
    assert [o.name for o in dag.get_task("load").outlets] == ["openai_batch_results"]  # an AssetAlias


TEXTS = {"model": "123", "system_prompt": "None", "prompt_template": "[1, 2]", "id_column": "True", "source": "1e3"}


def test_string_params_stay_strings_under_native_rendering(dagbag_class):
    """The DAG renders templates as native objects; a text Param that looks like a literal must not change type."""
    from types import SimpleNamespace

    dag = dagbag_class(dag_folder=str(REPO / "dags")).dags["openai_batch_inference"]
    split = dag.get_task("split")
    params = {**{k: p.value for k, p in dag.params.items()}, **TEXTS}
    context = {"params": params, "dag_run": SimpleNamespace(conf=dict(TEXTS)), "dag": dag, "task": split}
    env = dag.get_template_env()
    assert {name: split.render_template(getattr(split, name), context, env) for name in TEXTS} == TEXTS
