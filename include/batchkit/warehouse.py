"""Warehouse loaders: merged result Parquet -> a table, replacing one partition's rows atomically."""

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import duckdb

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def quote_identifier(name: str) -> str:
    """Validate a (possibly schema-qualified) table name from user input and quote each part."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise InputError(f"invalid table name {name!r}: use letters, digits and _ (optionally schema.table)")
    return ".".join(f'"{p}"' for p in parts)


def load_duckdb(
    database: str | Path,
    table: str,
    parquet_paths: list[str],
    partition_key: str,
    dag_run_id: str,
    lock_timeout: float = 300,
) -> int:
    """Replace ``partition_key``'s rows of ``table`` with the rows of ``parquet_paths`` in one transaction.

    Creates the table (and its schema) from the Parquet columns when missing. DuckDB allows one writing
    process per database file, so a concurrent load waits (up to ``lock_timeout`` seconds) for the lock.

    :returns: the number of rows now in the partition.
    """
    import duckdb

    target = quote_identifier(table)
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            con = duckdb.connect(str(database))
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(1)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    select = (
        "SELECT *, ?::VARCHAR AS partition_key, ?::VARCHAR AS dag_run_id, ?::TIMESTAMP AS loaded_at "
        "FROM read_parquet(?, union_by_name = true)"
    )
    args = [partition_key, dag_run_id, loaded_at, [str(p) for p in parquet_paths]]
    try:
        con.execute("BEGIN")
        if not _exists(con, table):
            if not parquet_paths:
                con.execute("ROLLBACK")
                return 0
            if "." in table:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {target.split('.')[0]}")
            con.execute(f"CREATE TABLE {target} AS {select} LIMIT 0", args)
        con.execute(f"DELETE FROM {target} WHERE partition_key = ?", [partition_key])
        if parquet_paths:
            con.execute(f"INSERT INTO {target} BY NAME {select}", args)
        count = con.execute(f"SELECT count(*) FROM {target} WHERE partition_key = ?", [partition_key]).fetchone()[0]
        con.execute("COMMIT")
        return count
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def _exists(con: "duckdb.DuckDBPyConnection", table: str) -> bool:
    schema, _, name = table.rpartition(".")
    return (
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND (? = '' OR table_schema = ?)",
            [name, schema, schema],
        ).fetchone()[0]
        > 0
    )
