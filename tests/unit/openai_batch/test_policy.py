"""The deployment's allow-lists for what a DAG's Params may reach."""

import pytest
from airflow.sdk.exceptions import AirflowFailException

from openai_batch.operators import LoadToWarehouseOperator, SplitPartitionOperator
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


def split_for(table: str, conn: str, **allowed: list[str]) -> SplitPartitionOperator:
    return SplitPartitionOperator(
        task_id="split", source="/s", staging_root="/st", model="m", table=table, warehouse_conn_id=conn, **allowed
    )


def test_the_split_refuses_what_the_load_would_refuse_before_anything_is_sent(monkeypatch):
    with pytest.raises(AirflowFailException, match=r"target_table 'main\.users' is not allowed"):
        split_for("main.users", "", allowed_tables=["review_sentiment"])._check_target()
    with pytest.raises(AirflowFailException, match="warehouse_conn_id 'dwh' is not allowed"):
        split_for("t", "dwh", allowed_warehouse_conns=[])._check_target()
    with pytest.raises(AirflowFailException, match="warehouse connection 'missing' does not exist"):
        split_for("t", "missing")._check_target()
    monkeypatch.setenv("AIRFLOW_CONN_WEB", '{"conn_type": "http", "host": "example.org"}')
    with pytest.raises(AirflowFailException, match="connection 'web' is of type 'http'"):
        split_for("t", "web")._check_target()
    monkeypatch.setenv("AIRFLOW_CONN_DWH", '{"conn_type": "postgres", "host": "db", "schema": "analytics"}')
    split_for("llm.reviews", "dwh", allowed_warehouse_conns=["dwh"], allowed_tables=["llm.*"])._check_target()
