"""Staging locations that several hosts can agree on."""

import pytest
from airflow.sdk.exceptions import AirflowFailException

from openai_batch.staging import connect_storage
from openai_batch.warehouses import table_uri


def test_a_relative_path_is_refused_when_tasks_run_on_several_hosts(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    with pytest.raises(AirflowFailException, match=r"'data/staging' is a relative path.*CeleryExecutor"):
        connect_storage("data/staging", None)
    assert connect_storage(str(tmp_path / "staging"), None).path == str(tmp_path / "staging")


def test_a_relative_path_is_fine_on_one_host(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    assert connect_storage("data/staging", None).path == str(tmp_path / "data" / "staging")


def test_the_results_asset_is_named_after_the_table_loaded():
    assert table_uri("duckdb:/srv/w.duckdb", "reviews") == "duckdb:/srv/w.duckdb/reviews"
    assert table_uri("postgres://db:5432/dwh", "reviews") == "postgres://db:5432/dwh/public/reviews"
    assert table_uri("postgres://db:5432/dwh", "llm.reviews") == "postgres://db:5432/dwh/llm/reviews"
