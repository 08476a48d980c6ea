"""PostgreSQL loads against the machine's real server: create, append, replace, concurrency, rollback,
schema growth, hostile identifiers."""

from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.errors import InputError
from batchkit.results.merge import merge_partition
from batchkit.warehouse.postgres_loader import load_postgres
from tests.helpers import corrupt_data_pages, moderated_partition, run_concurrently, staged_run


def results(tmp_path: Path, name: str, ids: list[int], **extra) -> str:
    path = tmp_path / name
    pq.write_table(
        pa.table(
            {
                "id": ids,
                "status": ["ok"] * len(ids),
                "embedding": pa.array([[0.5, 0.25]] * len(ids), pa.list_(pa.float32())),
                "review text": [f"r{i}" for i in ids],
                **extra,
            }
        ),
        path,
    )
    return str(path)


def rows(database: str, sql: str) -> list[tuple]:
    with psycopg.connect(database) as con:
        return con.execute(sql).fetchall()


def test_create_append_replace(database, tmp_path):
    assert load_postgres(database, "llm.results", [results(tmp_path, "a.parquet", [1, 2, 3])], "d1", "run1") == 3
    assert load_postgres(database, "llm.results", [results(tmp_path, "b.parquet", [4])], "d2", "run2") == 1
    assert load_postgres(database, "llm.results", [results(tmp_path, "c.parquet", [1, 2])], "d1", "run3") == 2
    assert rows(database, "SELECT partition_key, dag_run_id, count(*) FROM llm.results GROUP BY 1, 2 ORDER BY 1") == [
        ("d1", "run3", 2),
        ("d2", "run2", 1),
    ]
    assert rows(database, 'SELECT embedding, "review text" FROM llm.results WHERE id = 4') == [([0.5, 0.25], "r4")]


def test_moderation_columns_load_as_boolean_text_array_and_json_text(database, tmp_path, write_parquet):
    rows_file, ledger = moderated_partition(tmp_path, write_parquet)
    merged = tmp_path / "merged.parquet"
    merge_partition(rows_file, ledger, merged, endpoint="/v1/moderations")
    assert load_postgres(database, "moderated", [str(merged)], "d1", "run1") == 4
    types = "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'moderated'"
    assert {k: v for k, v in rows(database, types) if k.startswith(("flagged", "categ"))} == {
        "flagged": "boolean",
        "categories": "ARRAY",
        "category_scores": "text",
    }
    flagged = (
        "SELECT custom_id, categories, (category_scores::jsonb->>'harassment')::float FROM moderated WHERE flagged"
    )
    assert rows(database, flagged) == [("b", ["harassment"], 0.9)]
    assert rows(database, "SELECT custom_id FROM moderated WHERE NOT flagged") == [("a",)]


def test_concurrent_loads_of_two_partitions(database, tmp_path):
    files = {f"p{i}": results(tmp_path, f"p{i}.parquet", list(range(i * 1000, i * 1000 + 500))) for i in range(2)}
    assert run_concurrently(lambda p: load_postgres(database, "concurrent", [files[p]], p, "r"), files) == []
    assert rows(database, "SELECT partition_key, count(*) FROM concurrent GROUP BY 1 ORDER BY 1") == [
        ("p0", 500),
        ("p1", 500),
    ]


def test_concurrent_loads_of_the_same_partition_keep_its_rows_once(database, tmp_path):
    path = results(tmp_path, "same.parquet", list(range(5000)))
    assert run_concurrently(lambda run: load_postgres(database, "same_partition", [path], "d", run), "abcd") == []
    assert rows(database, "SELECT count(*), count(DISTINCT id) FROM same_partition WHERE partition_key = 'd'") == [
        (5000, 5000)
    ]


def test_failure_mid_load_keeps_previous_rows(database, tmp_path):
    load_postgres(database, "rollback", [results(tmp_path, "a.parquet", [1, 2])], "d", "r1")
    broken = corrupt_data_pages(results(tmp_path, "broken.parquet", list(range(5000))))
    with pytest.raises(Exception):  # noqa: B017 (the decoder's error; what matters is the rollback)
        load_postgres(database, "rollback", [results(tmp_path, "b.parquet", [7, 8, 9]), broken], "d", "r2")
    assert rows(database, "SELECT count(*), min(dag_run_id) FROM rollback") == [(2, "r1")]


def test_schema_growth_and_type_conflicts(database, tmp_path):
    load_postgres(database, "grow", [results(tmp_path, "a.parquet", [1])], "d1", "r")
    assert load_postgres(database, "grow", [results(tmp_path, "b.parquet", [2], note=["n"])], "d2", "r") == 1
    assert rows(database, "SELECT id, note FROM grow ORDER BY id") == [(1, None), (2, "n")]
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": ["x"], "status": ["ok"]}), bad)
    with pytest.raises(InputError, match=r"'id' is bigint in the table but text"):
        load_postgres(database, "grow", [str(bad)], "d3", "r")


@pytest.mark.parametrize("table", ['x"; DROP TABLE grow; --', "a.b.c", "robert'); --"])
def test_hostile_table_names_are_rejected(database, tmp_path, table):
    with pytest.raises(InputError, match="invalid table name"):
        load_postgres(database, table, [results(tmp_path, "a.parquet", [1])], "d", "r")


def test_load_operator_targets_postgres_through_a_connection(database, tmp_path, monkeypatch):
    from urllib.parse import urlsplit

    from openai_batch.operators import LoadToWarehouseOperator

    url = urlsplit(database)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        f'{{"conn_type": "postgres", "host": "{url.hostname}", '
        f'"port": {url.port}, "login": "postgres", "schema": "{url.path[1:]}"}}',
    )
    staged, context = staged_run(tmp_path, [1, 2, 3])
    operator = LoadToWarehouseOperator(
        task_id="load",
        results=[],
        database="unused.duckdb",
        table="from_operator",
        warehouse_conn_id="warehouse",
        **staged,
    )
    outcome = operator.execute(context)
    assert outcome["results_ok"] == 3 and outcome["warehouse"].startswith("postgres")
    assert rows(database, "SELECT count(*), min(dag_run_id) FROM from_operator WHERE partition_key = '2026-11-24'") == [
        (3, "manual__1")
    ]


def test_load_operator_checks_before_it_replaces_the_partition(tmp_path):
    import duckdb
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from openai_batch.operators import LoadToWarehouseOperator

    staged, context = staged_run(tmp_path / "good", [1, 2, 3, 4], errors={"4"})
    outcome = {"rows": 4, "ok": 3, "errors": 1, "requests": 4, "resubmitted": 1}
    warehouse = str(tmp_path / "w.duckdb")
    load = LoadToWarehouseOperator(
        task_id="load", results=[outcome], database=warehouse, table="t", max_error_rate=0.5, **staged
    )
    report = load.execute(context)
    assert {
        k: report[k]
        for k in ("input_rows", "requests_submitted", "resubmitted", "results_ok", "results_error", "merged")
    } == {"input_rows": 4, "requests_submitted": 4, "resubmitted": 1, "results_ok": 3, "results_error": 1, "merged": 4}

    def table() -> list[tuple]:
        with duckdb.connect(warehouse, read_only=True) as con:
            return con.execute("SELECT id, status, dag_run_id FROM t ORDER BY id").fetchall()

    before = table()
    assert len(before) == 4
    worse, context2 = staged_run(tmp_path / "worse", [1, 2, 3, 4], errors={"3", "4"}, run_id="manual__2")
    load = LoadToWarehouseOperator(
        task_id="load", results=[], database=warehouse, table="t", max_error_rate=0.2, **worse
    )
    with pytest.raises(
        AirflowFailException, match=r"2 of 4 rows \(50.0%\) ended in error.*the table was left unchanged"
    ):
        load.execute(context2)
    assert table() == before
    merged = tmp_path / "worse" / "staging" / "d" / "2026-11-24" / "manual__2" / "merged" / "result.parquet"
    assert merged.exists()
    numbers = context2["ti"].xcoms["numbers"]  # pushed before the refusal, for the report and notifications
    assert (numbers["results_error"], numbers["merged"], numbers["merged_file"]) == (2, 4, str(merged))

    short, context3 = staged_run(tmp_path / "short", [1, 2, 3, 4], unanswered={"2"}, run_id="manual__3")
    load = LoadToWarehouseOperator(task_id="load", results=[], database=warehouse, table="t", **short)
    with pytest.raises(AirflowException, match="1 request\\(s\\) of partition 2026-11-24 have no answer"):
        load.execute(context3)
    assert table() == before


def test_an_existing_table_this_pipeline_did_not_create_is_refused(database, tmp_path):
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("CREATE TABLE customers (id bigint, name text)")
        con.execute("INSERT INTO customers VALUES (1, 'Ada')")
    with pytest.raises(InputError, match="customers exists but was not created by this pipeline"):
        load_postgres(database, "customers", [results(tmp_path, "a.parquet", [1, 2])], "d1", "run1")
    assert rows(database, "SELECT * FROM customers") == [(1, "Ada")]
    columns = "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers' ORDER BY 1"
    assert rows(database, columns) == [("id",), ("name",)]


def test_typed_answer_columns_of_an_output_schema(database, tmp_path):
    """Structured outputs' typed columns (scalars and lists of scalars) land as PostgreSQL types and grow a table."""
    typed = {
        "label": pa.array(["positive", None], pa.string()),
        "confidence": pa.array([0.9, None], pa.float64()),
        "votes": pa.array([3, None], pa.int64()),
        "flagged": pa.array([False, None], pa.bool_()),
        "topics": pa.array([["battery", "screen"], None], pa.list_(pa.string())),
        "ranks": pa.array([[1, 2], None], pa.list_(pa.int64())),
    }
    assert load_postgres(database, "llm.typed", [results(tmp_path, "a.parquet", [1])], "d1", "run1") == 1
    assert load_postgres(database, "llm.typed", [results(tmp_path, "b.parquet", [2, 3], **typed)], "d2", "run2") == 2
    assert rows(database, "SELECT label, confidence, votes, flagged, topics, ranks FROM llm.typed ORDER BY id") == [
        (None, None, None, None, None, None),
        ("positive", 0.9, 3, False, ["battery", "screen"], [1, 2]),
        (None, None, None, None, None, None),
    ]
    # a second load of the same columns is no schema change
    assert load_postgres(database, "llm.typed", [results(tmp_path, "c.parquet", [4, 5], **typed)], "d2", "run3") == 2
