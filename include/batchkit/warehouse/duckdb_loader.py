"""DuckDB: Arrow/Parquet ingestion (no per-row inserts) into a database file."""

import time
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import InputError, WarehouseUnavailable
from ..memory import DEFAULT_TASK_MEMORY_MB, duckdb_limit, headroom
from . import load_schema, plan_columns, quote_column, quote_identifier, result_batches


def load_duckdb(
    database: str | Path,
    table: str,
    parquet_paths: list[str],
    partition_key: str,
    dag_run_id: str,
    lock_timeout: float = 300,
    task_memory_mb: int = DEFAULT_TASK_MEMORY_MB,
) -> int:
    """Replace ``partition_key``'s rows of ``table`` with the rows of ``parquet_paths`` in one transaction.

    Creates the table (and its schema) from the Parquet columns when missing. DuckDB allows one writing
    process per database file, so a concurrent load waits (up to ``lock_timeout`` seconds) for the lock.
    DuckDB's memory is held to a third of what the process has left of ``task_memory_mb``; it spills beyond.

    :returns: the number of rows now in the partition.
    """
    import duckdb

    target = quote_identifier(table)
    schema = load_schema(parquet_paths) if parquet_paths else None
    if schema is not None:
        _refuse_case_collisions(schema.names, table)
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    con = _connect(duckdb, database, lock_timeout, duckdb_limit(headroom(task_memory_mb), 3))
    try:
        con.execute("BEGIN")
        existing = _columns(con, table)
        if schema is not None:
            if not existing:
                if "." in table:
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {target.split('.')[0]}")
                columns = ", ".join(f"{quote_column(f.name)} {duckdb_type(f.type)}" for f in schema)
                con.execute(f"CREATE TABLE {target} ({columns})")
            for name, type_ in _added_columns(existing, schema, table):
                con.execute(f"ALTER TABLE {target} ADD COLUMN {quote_column(name)} {type_}")
        if existing or schema is not None:
            con.execute(f"DELETE FROM {target} WHERE partition_key = ?", [partition_key])
        if schema is not None:
            con.register("incoming", result_batches(parquet_paths, schema, partition_key, dag_run_id))
            con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM incoming")
        count = 0
        if existing or schema is not None:
            count = con.execute(f"SELECT count(*) FROM {target} WHERE partition_key = ?", [partition_key]).fetchone()[0]
        con.execute("COMMIT")
        return count
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def check_duckdb(database: str | Path, table: str, schema: pa.Schema) -> None:
    """Raise now what ``load_duckdb`` would raise for rows of ``schema`` against ``table`` as it is (a table this
    pipeline did not create, a column whose type would change, names differing only in case). Changes nothing;
    a file held by a writing load is not checked (that load checks)."""
    import duckdb

    _refuse_case_collisions(schema.names, table)
    if not Path(database).exists():
        return
    try:
        con = duckdb.connect(str(database), read_only=True)
    except duckdb.Error:
        return
    with con:
        _added_columns(_columns(con, table), schema, table)


def _added_columns(existing: dict[str, str], schema: pa.Schema, table: str) -> list[tuple[str, str]]:
    """The columns to add to ``table`` (``existing``: its columns; none: it is missing) for rows of ``schema``;
    raises what the load refuses."""
    _refuse_case_collisions({*existing, *schema.names}, table)
    return plan_columns(existing, schema, duckdb_type, table) if existing else []


@cache
def duckdb_type(arrow_type: pa.DataType) -> str:
    """DuckDB's type for an Arrow type, as DuckDB itself maps it (and reports it in information_schema)."""
    import duckdb

    return str(duckdb.from_arrow(pa.table({"x": pa.array([], arrow_type)})).types[0])


def _connect(duckdb: Any, database: str | Path, lock_timeout: float, memory_limit: str) -> Any:
    """DuckDB allows one writing process per file: wait (bounded) for another load to finish. Memory is SET, not
    given to ``connect``: a second connection to the file in this process would have to repeat the config."""
    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            con = duckdb.connect(str(database))
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute("SET preserve_insertion_order = false")  # the loaded rows' order carries nothing
            return con
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() > deadline:
                raise WarehouseUnavailable(
                    f"DuckDB file {database} stayed locked by another process for {lock_timeout:.0f}s; nothing was "
                    "changed"
                ) from None
            time.sleep(1)


def _columns(con: Any, table: str) -> dict[str, str]:
    schema, _, name = table.rpartition(".")
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "AND (? = '' OR table_schema = ?) ORDER BY ordinal_position",
        [name, schema, schema],
    ).fetchall()
    return dict(rows)


def _refuse_case_collisions(names: Iterable[str], table: str) -> None:
    """DuckDB column names ignore case: two names differing only in case cannot both be columns of ``table``."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            raise InputError(
                f"columns {other!r} and {name!r} of table {table} differ only in case, which DuckDB cannot tell "
                "apart; nothing was changed: rename one of them"
            )
