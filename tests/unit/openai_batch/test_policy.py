"""The deployment's allow-lists for what a DAG's Params may reach."""

import pytest
from airflow.sdk.exceptions import AirflowFailException

from openai_batch.operators import LoadToWarehouseOperator
from openai_batch.policy import check_source, check_warehouse


@pytest.mark.parametrize(
    "source",
    ["/data/reviews/dt=2026-11-24", "/data", "s3://lake/reviews/dt=1/", "S3://lake/reviews/x", "file:///data/x"],
)
def test_sources_under_an_allowed_root_pass(source):
    check_source(source, ["/data", "s3://lake/reviews"])


@pytest.mark.parametrize(
    "source",
    [
        "/data/../etc/passwd",
        "/database",
        "/etc",
        "s3://lake/reviews-private/x",
        "s3://lake/reviews/../hr/x",
        "gs://lake/reviews",
    ],
)
def test_sources_elsewhere_are_refused(source):
    with pytest.raises(AirflowFailException, match="OPENAI_BATCH_ALLOWED_SOURCES"):
        check_source(source, ["/data", "s3://lake/reviews"])


def test_no_list_means_no_restriction():
    check_source("/anywhere", None)
    check_warehouse("any", "any.table", None, None)


def test_warehouse_connections_and_tables():
    check_warehouse("", "review_sentiment", [], ["review_sentiment"])  # the DuckDB default needs no entry
    check_warehouse("dwh", "llm.Reviews", ["dwh"], ["llm.*"])
    with pytest.raises(AirflowFailException, match="warehouse_conn_id 'metadata_db' is not allowed"):
        check_warehouse("metadata_db", "llm.x", ["dwh"], ["llm.*"])
    with pytest.raises(AirflowFailException, match=r"target_table 'public\.users' is not allowed"):
        check_warehouse("dwh", "public.users", ["dwh"], ["llm.*"])


def test_the_load_refuses_before_it_touches_anything(tmp_path):
    load = LoadToWarehouseOperator(
        task_id="load",
        results=[],
        split={},
        staging_root=str(tmp_path),
        database=str(tmp_path / "w.duckdb"),
        table="main.users",
        allowed_tables=["review_sentiment"],
    )
    with pytest.raises(AirflowFailException, match=r"target_table 'main\.users' is not allowed"):
        load.execute({})
    assert list(tmp_path.iterdir()) == []
