"""The partition key (from the Param or the data interval, never a path or a glob) and the task run read from the
context once."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from openai_batch.context import TaskRun, batch_key, fill_source, partition_key

HOSTILE = ["../../etc", "/etc/passwd", "..", "2026-11-*", "2026-11-2[0-4]", "a/b", "a\\b", "dt=2026?", " x y "]


def context(partition: str = "", fmt: str = "%Y-%m-%d") -> dict:
    run = SimpleNamespace(data_interval_start=datetime(2026, 11, 24, 5, tzinfo=UTC), run_after=None)
    return {"params": {"partition": partition, "partition_format": fmt}, "dag_run": run}


@pytest.mark.parametrize("value", HOSTILE)
def test_a_partition_that_could_leave_its_folder_or_glob_is_refused(value):
    with pytest.raises(AirflowFailException, match="is not a partition key"):
        partition_key(context(value))


@pytest.mark.parametrize("value", HOSTILE)
def test_the_dag_param_refuses_it_in_the_trigger_form(value):
    from airflow.dag_processing.dagbag import DagBag

    from batchkit.dev.devstack import REPO

    param = DagBag(dag_folder=str(REPO / "dags")).dags["openai_batch_inference"].params.get_param("partition")
    with pytest.raises(Exception, match="does not match"):
        param.resolve(value)


def test_good_keys_pass_and_formats_must_make_good_keys():
    assert partition_key(context("2026-11-24")) == "2026-11-24"
    assert partition_key(context("", "%Y-%m-%dT%H")) == "2026-11-24T05"
    with pytest.raises(AirflowFailException, match="is not a partition key"):
        partition_key(context("", "%Y/%m/%d"))


def test_a_task_run_reads_the_context_once_and_names_the_actor():
    given = {
        **context("", "%Y-%m-%dT%H"),
        "run_id": "scheduled__1",
        "dag": SimpleNamespace(dag_id="d"),
        "ti": SimpleNamespace(task_id="batch.submit", map_index=3),
    }
    run = TaskRun.of(given)
    assert run == TaskRun("d", "scheduled__1", "batch.submit", 3, "2026-11-24T05", "%Y-%m-%dT%H")
    assert run.actor == "d/scheduled__1/batch.submit[3]"


def test_hourly_folders_are_filled_from_the_partitions_time():
    hourly = TaskRun.of(
        {
            **context("", "%Y-%m-%dT%H"),
            "run_id": "r",
            "dag": SimpleNamespace(dag_id="d"),
            "ti": SimpleNamespace(task_id="split", map_index=-1),
        }
    )
    assert (
        hourly.source("s3://lake/ev/dt={partition:%Y-%m-%d}/hr={partition:%H}/") == "s3://lake/ev/dt=2026-11-24/hr=05/"
    )
    assert hourly.source("/data/ev/{partition}/*.parquet") == "/data/ev/2026-11-24T05/*.parquet"
    assert fill_source("/d/dt={partition}/", "2026-11-24") == "/d/dt=2026-11-24/"
    with pytest.raises(AirflowFailException, match="does not follow partition_format '%Y-%m-%d'"):
        fill_source("/d/dt={partition:%Y}/hr={partition:%H}", "batch-7")  # a manual key that is not a time


def test_a_pipeline_in_a_group_has_its_own_batch_keys_and_the_top_level_keeps_its_recipe():
    import hashlib

    sha = "ef" * 32
    recipe = hashlib.sha256(f"v2|d|p|{sha}|1".encode()).hexdigest()[:32]  # live batches carry keys made so
    assert batch_key("d", "p", sha) == batch_key("d", "p", sha, pipeline="") == recipe
    keys = {batch_key("d", "p", sha, pipeline=p) for p in ("", "a", "b")} | {batch_key("d/a", "p", sha)}
    assert len(keys) == 3, "a DAG id never holds a slash, so 'd/a' is the same owner as pipeline a of d"


def test_staging_and_ledger_of_a_pipeline_in_a_group_sit_apart_from_the_top_level(tmp_path):
    from openai_batch.staging import RunStaging

    top = TaskRun("d", "manual__1", "split", -1, "2026-11-24")
    grouped = TaskRun("d", "manual__1", "reviews.split", -1, "2026-11-24", pipeline="reviews")
    root = str(tmp_path)
    assert RunStaging(root, top).url() == f"{tmp_path}/d/2026-11-24/manual__1"  # the layout deployments rely on
    assert RunStaging(root, top).ledger().root == f"{tmp_path}/d/2026-11-24/_ledger"
    assert RunStaging(root, grouped).url() == f"{tmp_path}/d/_pipelines/reviews/2026-11-24/manual__1"
    assert RunStaging(root, grouped).ledger().root == f"{tmp_path}/d/_pipelines/reviews/2026-11-24/_ledger"
