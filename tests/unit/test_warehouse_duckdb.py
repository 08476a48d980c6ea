"""DuckDB loads: create, replace a partition, keep other partitions, refuse hostile names, roll back."""

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.errors import InputError
from batchkit.warehouse import load_duckdb, quote_identifier


def parquet(tmp_path, name, ids):
    path = tmp_path / name
    pq.write_table(pa.table({"id": ids, "status": ["ok"] * len(ids)}), path)
    return str(path)


def test_create_replace_and_keep_other_partitions(tmp_path):
    db = tmp_path / "w.duckdb"
    assert load_duckdb(db, "results", [parquet(tmp_path, "a.parquet", [1, 2, 3])], "2026-11-24", "run1") == 3
    assert load_duckdb(db, "results", [parquet(tmp_path, "b.parquet", [4])], "2026-11-25", "run2") == 1
    assert load_duckdb(db, "results", [parquet(tmp_path, "c.parquet", [1, 2])], "2026-11-24", "run3") == 2
    with duckdb.connect(str(db)) as con:
        rows = con.execute(
            "SELECT partition_key, dag_run_id, count(*) FROM results GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
    assert rows == [("2026-11-24", "run3", 2), ("2026-11-25", "run2", 1)]


def test_schema_qualified_table(tmp_path):
    db = tmp_path / "w.duckdb"
    assert load_duckdb(db, "llm.results", [parquet(tmp_path, "a.parquet", [1])], "p", "r") == 1


def test_failed_load_keeps_previous_rows(tmp_path):
    db = tmp_path / "w.duckdb"
    load_duckdb(db, "results", [parquet(tmp_path, "a.parquet", [1, 2])], "p", "r1")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(duckdb.Error):
        load_duckdb(db, "results", [str(bad)], "p", "r2")
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT count(*), min(dag_run_id) FROM results").fetchone() == (2, "r1")


@pytest.mark.parametrize("name", ["x; DROP TABLE y", 'a"b', "a.b.c", "1abc", "", "a b"])
def test_hostile_identifiers_rejected(name):
    with pytest.raises(InputError, match="invalid table name"):
        quote_identifier(name)
