"""The pipeline factory: two pipelines in one DAG never meet (task ids, XCom templates, staging, ledgers, batch
keys, asset aliases, pruning), the shipped DAG keeps its shape, and settings come explicit > environment/Variable >
default."""

import os
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from batchkit.dev.devstack import REPO
from openai_batch.context import TaskRun, in_group
from openai_batch.pipeline import Pipeline, batch_pipeline
from openai_batch.settings import PipelineSettings
from openai_batch.staging import RunStaging

STEPS = ("split", "batch.submit", "batch.wait", "batch.collect", "load", "report", "prune_staging")


def two_pipelines(settings: PipelineSettings) -> tuple[DAG, Pipeline, Pipeline]:
    with DAG("two", schedule=None, render_template_as_native_obj=True) as dag:
        start, end = EmptyOperator(task_id="start"), EmptyOperator(task_id="end")
        reviews = batch_pipeline("reviews", settings=settings, source="/lake/reviews/{partition}", target_table="r")
        tickets = batch_pipeline("tickets", settings=settings, source="/lake/tickets/{partition}", target_table="t")
        start >> [reviews, tickets]
        reviews >> end
        tickets >> end
    return dag, reviews, tickets


@pytest.fixture
def settings(tmp_path: Path) -> PipelineSettings:
    return PipelineSettings(staging_root=str(tmp_path / "staging"), warehouse=str(tmp_path / "w.duckdb"))


def test_two_pipelines_in_one_dag_have_their_own_task_ids_templates_and_aliases(settings):
    dag, reviews, tickets = two_pipelines(settings)
    assert set(dag.task_ids) == {"start", "end"} | {f"{g}.{step}" for g in ("reviews", "tickets") for step in STEPS}
    for pipeline in (reviews, tickets):
        g = pipeline.pipeline_id
        load, report = dag.get_task(f"{g}.load"), dag.get_task(f"{g}.report")
        assert load.results == report.results == f"{{{{ ti.xcom_pull(task_ids='{g}.batch.collect') }}}}"
        assert load.split == report.split == f"{{{{ ti.xcom_pull(task_ids='{g}.split', key='split') }}}}"
        assert report.load == f"{{{{ ti.xcom_pull(task_ids='{g}.load', key='numbers') }}}}"
        assert in_group(g, "load") == pipeline.load.task_id  # what the notifications read
        assert {t.pipeline_id for t in dag.tasks if t.task_id.startswith(g) and hasattr(t, "pipeline_id")} == {g}
    assert [o.name for o in reviews.load.outlets] == ["openai_batch_results.two.reviews"]
    assert dag.get_task("tickets.split").source == "/lake/tickets/{partition}"
    assert dag.get_task("tickets.load").table == "t"


def test_upstream_and_downstream_tasks_attach_to_a_pipeline_as_to_a_task_group(settings):
    dag, *_ = two_pipelines(settings)
    for g in ("reviews", "tickets"):
        assert dag.get_task("start").downstream_task_ids >= {f"{g}.split", f"{g}.prune_staging"}
        assert dag.get_task("end").upstream_task_ids >= {f"{g}.load", f"{g}.prune_staging"}
        assert f"{g}.report" not in dag.get_task("end").upstream_task_ids  # a teardown never gates what follows
    with DAG("top", schedule=None, render_template_as_native_obj=True, params={}) as top:
        before = EmptyOperator(task_id="before")
        pipeline = batch_pipeline(settings=settings, source="/lake/{partition}")
        before >> pipeline >> EmptyOperator(task_id="after")
    assert pipeline.group is None and pipeline.pipeline_id == ""
    assert top.get_task("before").downstream_task_ids == {"split", "prune_staging"}
    assert top.get_task("after").upstream_task_ids == {"load", "prune_staging"}


def run_of(task, partition: str = "2026-11-24") -> TaskRun:
    return TaskRun("two", "manual__1", task.task_id, -1, partition, pipeline=task.pipeline_id)


def test_each_pipeline_stages_and_keeps_its_ledger_in_its_own_area(settings, tmp_path):
    dag, *_ = two_pipelines(settings)
    areas = {g: RunStaging(settings.staging_root, run_of(dag.get_task(f"{g}.split"))) for g in ("reviews", "tickets")}
    staging = tmp_path / "staging" / "two" / "_pipelines"
    assert areas["reviews"].url() == f"{staging}/reviews/2026-11-24/manual__1"
    assert areas["tickets"].ledger().root == f"{staging}/tickets/2026-11-24/_ledger"
    assert areas["reviews"].ledger().root != areas["tickets"].ledger().root


def aged(path: Path, days: float = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    stamp = time.time() - days * 86400
    os.utime(path, (stamp, stamp))
    return path


def test_prune_of_one_pipeline_never_deletes_another_pipelines_areas_or_any_ledger(settings, tmp_path):
    dag, *_ = two_pipelines(settings)
    root = tmp_path / "staging" / "two"
    old = {
        "": aged(root / "2026-11-01" / "old" / "inputs" / "f"),
        "reviews": aged(root / "_pipelines" / "reviews" / "2026-11-01" / "old" / "inputs" / "f"),
        "tickets": aged(root / "_pipelines" / "tickets" / "2026-11-01" / "old" / "inputs" / "f"),
    }
    ledgers = [aged(p.parents[2] / "_ledger" / "batches" / "k.json") for p in old.values()]
    context = {
        "params": {"partition": "2026-11-24"},
        "dag": dag,
        "run_id": "manual__1",
        "dag_run": SimpleNamespace(conf={}),
    }

    def prune(task) -> int:
        return task.execute({**context, "ti": SimpleNamespace(task_id=task.task_id, map_index=-1)})

    assert prune(dag.get_task("reviews.prune_staging")) == 1
    assert not old["reviews"].exists() and old[""].exists() and old["tickets"].exists()
    with DAG("two", schedule=None, render_template_as_native_obj=True) as same_dag_id:
        batch_pipeline(settings=settings, source="/lake/{partition}")  # the top level of a DAG of that id
    assert prune(same_dag_id.get_task("prune_staging")) == 1
    assert not old[""].exists() and old["tickets"].exists()
    assert all(ledger.exists() for ledger in ledgers)


def test_the_shipped_dag_is_the_top_level_pipeline_with_its_task_ids_and_templates():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["openai_batch_inference"]
    assert set(dag.task_ids) == set(STEPS)
    assert {t.pipeline_id for t in dag.tasks if hasattr(t, "pipeline_id")} == {""}  # today's staging layout
    assert dag.get_task("load").results == "{{ ti.xcom_pull(task_ids='batch.collect') }}"
    assert dag.get_task("report").load == "{{ ti.xcom_pull(task_ids='load', key='numbers') }}"
    assert dag.get_task("load").split == "{{ ti.xcom_pull(task_ids='split', key='split') }}"
    assert [o.name for o in dag.get_task("load").outlets] == ["openai_batch_results"]


def test_a_given_option_wins_over_the_dags_param_and_mistakes_fail_at_parse_time(settings):
    params = {"source": "/lake/{partition}", "model": "gpt-4o-mini"}
    with DAG("p", schedule=None, render_template_as_native_obj=True, params=params):
        pipeline = batch_pipeline(settings=settings, model="gpt-4.1-mini")
    assert pipeline.split.model == "gpt-4.1-mini"
    assert pipeline.split.source.serialize()["name"] == "source"  # the Param, read natively when the task runs
    assert pipeline.split.max_requests is None  # no such Param: its default (the vendor's limit)
    with DAG("q", schedule=None, render_template_as_native_obj=True), pytest.raises(TypeError, match="tabel"):
        batch_pipeline(settings=settings, source="/s", tabel="x")
    with DAG("r", schedule=None), pytest.raises(ValueError, match="render_template_as_native_obj=True"):
        batch_pipeline(settings=settings, source="/s")


def render(template: str) -> str:
    from airflow.sdk.execution_time.context import VariableAccessor

    return jinja2.Environment().from_string(template).render(var={"value": VariableAccessor(False)})


def test_settings_precedence_explicit_then_environment_or_variable_then_default(monkeypatch, tmp_path):
    for name in [n for n in os.environ if n.startswith("OPENAI_BATCH_") or n.startswith("AIRFLOW_VAR_OPENAI")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    default = PipelineSettings.from_env()
    assert (default.retries, default.poll_seconds, default.max_parallel_collects) == (2, 60.0, 4)
    assert render(default.staging_root) == f"{tmp_path}/data/staging"
    assert default.allowed_sources == (f"{tmp_path}/data",) and default.allowed_warehouse_conns == ()

    monkeypatch.setenv("OPENAI_BATCH_TASK_RETRIES", "0")
    monkeypatch.setenv("OPENAI_BATCH_MAX_PARALLEL", "9")
    monkeypatch.setenv("OPENAI_BATCH_STAGING", "/env/staging")
    monkeypatch.setenv("OPENAI_BATCH_ALLOWED_TABLES", "llm.*, r")
    env = PipelineSettings.from_env()
    assert (env.retries, env.max_parallel_collects, env.allowed_tables) == (0, 9, ("llm.*", "r"))
    assert render(env.staging_root) == "/env/staging"
    monkeypatch.setenv("AIRFLOW_VAR_OPENAI_BATCH_STAGING", "s3://from-variable/staging")
    assert render(env.staging_root) == "s3://from-variable/staging"  # read when the task runs: wins over the env

    given = PipelineSettings.from_env(retries=5, staging_root="/given", retry_delay=timedelta(seconds=1))
    assert (given.retries, given.staging_root, given.retry_delay, given.max_parallel_batches) == (
        5,
        "/given",
        timedelta(seconds=1),
        9,
    )
    with pytest.raises(TypeError, match="unknown pipeline settings: retrys"):
        PipelineSettings.from_env(retrys=1)
