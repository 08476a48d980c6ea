"""Warehouse selection: DuckDB without a connection, postgres or redshift by connection type, else a clear error."""

import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from openai_batch.warehouses import load_partition, table_uri


def merged_file(tmp_path) -> str:
    path = tmp_path / "result.parquet"
    pq.write_table(pa.table({"review_id": [1, 2], "status": ["ok", "ok"], "response_text": ["a", "b"]}), path)
    return str(path)


def test_without_a_connection_the_partition_goes_into_the_duckdb_file(tmp_path):
    database = tmp_path / "w.duckdb"
    where, rows = load_partition(None, str(database), "answers", [merged_file(tmp_path)], "2026-11-24", "run_1")
    assert (where, rows) == (f"duckdb:{database}", 2)
    assert table_uri(where, "answers") == f"duckdb:{database}/answers"
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM answers WHERE partition_key = '2026-11-24'").fetchone() == (2,)


def test_a_connection_of_another_type_is_refused_by_name_before_anything_is_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DWH_MYSQL", json.dumps({"conn_type": "mysql", "host": "db"}))
    with pytest.raises(AirflowFailException, match=r"connection 'dwh_mysql' is of type 'mysql'; use a postgres"):
        load_partition("dwh_mysql", str(tmp_path / "w.duckdb"), "answers", [merged_file(tmp_path)], "p", "r")
    assert not (tmp_path / "w.duckdb").exists()


def test_a_relative_duckdb_file_is_refused_when_tasks_run_on_several_hosts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    with pytest.raises(AirflowFailException, match=r"'w.duckdb' is a relative path, and with the CeleryExecutor"):
        load_partition(None, "w.duckdb", "answers", [merged_file(tmp_path)], "p", "r")
    assert not (tmp_path / "w.duckdb").exists()
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")  # one host: one meaning
    assert load_partition(None, "w.duckdb", "answers", [merged_file(tmp_path)], "p", "r")[1] == 2
