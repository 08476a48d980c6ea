"""PostgreSQL: binary COPY through ADBC (libpq), streaming Arrow batches; never row-by-row inserts."""

from typing import Any

import pyarrow as pa

from ..errors import InputError, WarehouseUnavailable
from . import load_schema, plan_columns, quote_column, quote_identifier, result_batches, without_passwords

_TYPES = [  # (Arrow predicate, PostgreSQL type, information_schema name)
    (pa.types.is_boolean, "boolean", "boolean"),
    (lambda t: pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t), "smallint", "smallint"),
    (lambda t: pa.types.is_int32(t) or pa.types.is_uint16(t), "integer", "integer"),
    (lambda t: pa.types.is_int64(t) or pa.types.is_uint32(t), "bigint", "bigint"),
    (pa.types.is_float32, "real", "real"),
    (pa.types.is_float64, "double precision", "double precision"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "text", "text"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "bytea", "bytea"),
    (pa.types.is_date32, "date", "date"),
    (lambda t: pa.types.is_timestamp(t) and t.tz is None, "timestamp", "timestamp without time zone"),
    (lambda t: pa.types.is_timestamp(t) and t.tz is not None, "timestamptz", "timestamp with time zone"),
    (lambda t: pa.types.is_list(t) and pa.types.is_float32(t.value_type), "real[]", "_float4"),
    (lambda t: pa.types.is_list(t) and pa.types.is_float64(t.value_type), "double precision[]", "_float8"),
    (lambda t: pa.types.is_list(t) and pa.types.is_int64(t.value_type), "bigint[]", "_int8"),
    (lambda t: pa.types.is_list(t) and pa.types.is_boolean(t.value_type), "boolean[]", "_bool"),
    (lambda t: pa.types.is_list(t) and pa.types.is_string(t.value_type), "text[]", "_text"),
]


def _connect(pg: Any, uri: str) -> Any:
    """A connection, or ``WarehouseUnavailable`` (transient: the server, the database or the network may be back
    on a retry) naming the server without its password."""
    import adbc_driver_manager

    try:
        return pg.connect(uri)
    except adbc_driver_manager.Error as exc:
        text = str(exc).strip()
        reason = without_passwords(text.splitlines()[0]) if text else type(exc).__name__
        raise WarehouseUnavailable(
            f"cannot load into {without_passwords(uri)}: {reason}; nothing was changed"
        ) from None


def postgres_type(arrow_type: pa.DataType, info_name: bool = False) -> str:
    for matches, ddl, info in _TYPES:
        if matches(arrow_type):
            return info if info_name else ddl
    raise InputError(f"column type {arrow_type} has no PostgreSQL mapping; cast it in the source first")


def load_postgres(uri: str, table: str, parquet_paths: list[str], partition_key: str, dag_run_id: str) -> int:
    """Replace ``partition_key``'s rows of ``table`` with the result files, in one transaction.

    DDL (create table, add columns) runs first in its own short transaction under an advisory lock, so
    concurrent loads of different partitions do not race to create the same table. The swap (delete + COPY)
    holds an advisory lock on (table, partition) until it commits, so concurrent loads of the same partition
    run one after the other and leave its rows once.

    :param uri: ``postgresql://user:password@host:port/database``.
    :returns: the number of rows now in the partition.
    """
    import adbc_driver_postgresql.dbapi as pg

    target = quote_identifier(table)
    schema_name, _, table_name = table.rpartition(".")
    schema = load_schema(parquet_paths) if parquet_paths else None
    with _connect(pg, uri) as conn, conn.cursor() as cur:
        if schema is not None:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext($1))", parameters=(table,))
            existing = _columns(cur, schema_name, table_name)
            if not existing:
                if schema_name:
                    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema_name)}")
                columns = ", ".join(f"{quote_column(f.name)} {postgres_type(f.type)}" for f in schema)
                cur.execute(f"CREATE TABLE {target} ({columns})")
                cur.execute(f"CREATE INDEX ON {target} (partition_key)")
            else:
                for name, _ in plan_columns(existing, schema, lambda t: postgres_type(t, True), table):
                    field = schema.field(name)
                    cur.execute(f"ALTER TABLE {target} ADD COLUMN {quote_column(name)} {postgres_type(field.type)}")
            conn.commit()
        elif not _columns(cur, schema_name, table_name):
            return 0
        cur.execute("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", parameters=(table, partition_key))
        cur.execute(f"DELETE FROM {target} WHERE partition_key = $1", parameters=(partition_key,))
        if schema is not None:
            cur.adbc_ingest(
                table_name,
                result_batches(parquet_paths, schema, partition_key, dag_run_id),
                mode="append",
                db_schema_name=schema_name or None,
            )
        cur.execute(f"SELECT count(*) FROM {target} WHERE partition_key = $1", parameters=(partition_key,))
        count = cur.fetchone()[0]
        conn.commit()
        return count


def check_postgres(uri: str, table: str, schema: pa.Schema) -> None:
    """Raise now what ``load_postgres`` would raise for rows of ``schema`` against ``table`` as it is (a table this
    pipeline did not create, a column whose type would change or has no PostgreSQL type). Changes nothing."""
    import adbc_driver_postgresql.dbapi as pg

    quote_identifier(table)
    schema_name, _, table_name = table.rpartition(".")
    with _connect(pg, uri) as conn, conn.cursor() as cur:
        existing = _columns(cur, schema_name, table_name)
    if existing:
        plan_columns(existing, schema, lambda t: postgres_type(t, True), table)
    for field in schema:
        postgres_type(field.type)


def _columns(cur: object, schema_name: str, table_name: str) -> dict[str, str]:
    cur.execute(
        "SELECT column_name, CASE WHEN data_type = 'ARRAY' THEN udt_name ELSE data_type END "
        "FROM information_schema.columns WHERE table_name = $1 AND table_schema = "
        "CASE WHEN $2 = '' THEN current_schema() ELSE $2 END ORDER BY ordinal_position",
        parameters=(table_name, schema_name),
    )
    return dict(cur.fetchall())
