"""DuckDB loads: create, replace a partition, keep other partitions, refuse hostile names, roll back."""

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.errors import InputError
from batchkit.warehouse import quote_identifier
from batchkit.warehouse.duckdb_loader import load_duckdb
from tests.helpers import corrupt_data_pages, run_concurrently


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
    unreadable = tmp_path / "junk.parquet"
    unreadable.write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"junk\.parquet: not a readable Parquet result file"):
        load_duckdb(db, "results", [str(unreadable)], "p", "r2")
    good = parquet(tmp_path, "b.parquet", [7, 8, 9])
    broken = corrupt_data_pages(parquet(tmp_path, "c.parquet", list(range(5000))))
    with pytest.raises(Exception):  # noqa: B017 (whatever the decoder raises, the transaction must roll back)
        load_duckdb(db, "results", [good, broken], "p", "r3")
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT count(*), min(dag_run_id) FROM results").fetchone() == (2, "r1")


def test_schema_growth_adds_columns_and_type_changes_are_refused(tmp_path):
    db = tmp_path / "w.duckdb"
    load_duckdb(db, "results", [parquet(tmp_path, "a.parquet", [1])], "p1", "r")
    grown = tmp_path / "g.parquet"
    pq.write_table(pa.table({"id": [2], "status": ["ok"], "note": ["new"]}), grown)
    assert load_duckdb(db, "results", [str(grown)], "p2", "r") == 1
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT id, note FROM results ORDER BY id").fetchall() == [(1, None), (2, "new")]
    changed = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["x"], "status": ["ok"]}), changed)
    with pytest.raises(InputError, match=r"incompatible schema change.*'id' is BIGINT in the table but VARCHAR"):
        load_duckdb(db, "results", [str(changed)], "p3", "r")


@pytest.mark.parametrize("name", ["x; DROP TABLE y", 'a"b', "a.b.c", "1abc", "", "a b"])
def test_hostile_identifiers_rejected(name):
    with pytest.raises(InputError, match="invalid table name"):
        quote_identifier(name)


def test_concurrent_loads_of_two_partitions(tmp_path):
    db = tmp_path / "w.duckdb"
    load_duckdb(db, "results", [parquet(tmp_path, "seed.parquet", [0])], "seed", "r")
    files = {p: parquet(tmp_path, f"{p}.parquet", list(range(n))) for p, n in (("p1", 300), ("p2", 200))}
    assert run_concurrently(lambda p: load_duckdb(db, "results", [files[p]], p, "r"), files) == []
    with duckdb.connect(str(db)) as con:
        got = con.execute("SELECT partition_key, count(*) FROM results GROUP BY 1 ORDER BY 1").fetchall()
    assert got == [("p1", 300), ("p2", 200), ("seed", 1)]


def test_cli_loads_refused_results_on_purpose(tmp_path, capsys):
    from batchkit.cli import main

    merged = tmp_path / "result.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "status": ["ok", "error", "error"]}), merged)
    database = str(tmp_path / "w.duckdb")
    code = main(["load", str(merged), "--table", "t", "--partition", "2026-11-24", "--duckdb", database])
    assert code == 0 and "partition 2026-11-24 of t now holds 3 rows" in capsys.readouterr().out
    with duckdb.connect(database, read_only=True) as con:
        assert con.execute("SELECT count(*), min(dag_run_id) FROM t").fetchone() == (3, "manual-load")


def test_an_existing_table_this_pipeline_did_not_create_is_refused(tmp_path):
    db = str(tmp_path / "w.duckdb")
    with duckdb.connect(db) as con:
        con.execute("CREATE TABLE customers (id BIGINT, name VARCHAR)")
        con.execute("INSERT INTO customers VALUES (1, 'Ada')")
    with pytest.raises(InputError, match="customers exists but was not created by this pipeline"):
        load_duckdb(db, "customers", [parquet(tmp_path, "a.parquet", [1, 2])], "d1", "run1")
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("SELECT * FROM customers").fetchall() == [(1, "Ada")]
        assert [c[0] for c in con.execute("DESCRIBE customers").fetchall()] == ["id", "name"]


def test_a_column_differing_only_in_case_from_the_tables_is_refused(tmp_path):
    db = tmp_path / "w.duckdb"
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"id": [1], "text": ["a"]}), first)
    pq.write_table(pa.table({"id": [2], "Text": ["b"]}), second)
    load_duckdb(db, "results", [str(first)], "p", "r1")
    with pytest.raises(InputError, match=r"'(text|Text)' and '(text|Text)' of table results differ only in case"):
        load_duckdb(db, "results", [str(second)], "p", "r2")
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT id, text, dag_run_id FROM results").fetchall() == [(1, "a", "r1")]


def test_a_table_the_rows_could_not_be_loaded_into_is_refused_before_the_load(tmp_path):
    from batchkit.warehouse import load_schema
    from batchkit.warehouse.duckdb_loader import check_duckdb

    def results_file(path, columns):
        pq.write_table(pa.table(columns), path)
        return str(path)

    db = tmp_path / "w.duckdb"
    first = results_file(tmp_path / "a.parquet", {"id": [1], "score": [0.5]})
    schema = load_schema([first])
    check_duckdb(db, "t", schema)  # no file yet: nothing to refuse, nothing created
    assert not db.exists()
    load_duckdb(db, "t", [first], "p1", "r")
    check_duckdb(db, "t", schema)
    check_duckdb(db, "t", load_schema([results_file(tmp_path / "b.parquet", {"id": [2], "new": ["x"]})]))
    with pytest.raises(InputError, match="'score' is DOUBLE in the table but VARCHAR"):
        check_duckdb(db, "t", load_schema([results_file(tmp_path / "c.parquet", {"id": [3], "score": ["high"]})]))
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(InputError, match="not created by this pipeline"):
        check_duckdb(db, "users", schema)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone() == (1,)
        assert [r[0] for r in con.execute("DESCRIBE t").fetchall()][:2] == ["id", "score"]
