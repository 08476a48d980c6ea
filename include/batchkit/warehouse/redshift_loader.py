"""Redshift: stage the results as Parquet in S3, then ``COPY ... FORMAT AS PARQUET`` into a staging table and
swap the partition's rows in one transaction.

Redshift itself cannot run on a developer machine: the statements are plain SQL strings so they can be
inspected, and every statement except the COPY is also valid PostgreSQL (the tests run them there).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError
from . import load_schema, plan_columns, quote_column, quote_identifier, result_batches

_TYPES = [  # (Arrow predicate, Redshift type)
    (pa.types.is_boolean, "BOOLEAN"),
    (lambda t: pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t), "SMALLINT"),
    (lambda t: pa.types.is_int32(t) or pa.types.is_uint16(t), "INTEGER"),
    (lambda t: pa.types.is_int64(t) or pa.types.is_uint32(t), "BIGINT"),
    (pa.types.is_float32, "REAL"),
    (pa.types.is_float64, "DOUBLE PRECISION"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "VARCHAR(65535)"),
    (pa.types.is_date32, "DATE"),
    (lambda t: pa.types.is_timestamp(t) and t.tz is None, "TIMESTAMP"),
    (lambda t: pa.types.is_timestamp(t) and t.tz is not None, "TIMESTAMPTZ"),
    (pa.types.is_list, "SUPER"),  # embeddings: Redshift has no arrays
]
STAGE_ROWS_PER_FILE = 500_000  # several files let the cluster's slices COPY in parallel


def redshift_type(arrow_type: pa.DataType) -> str:
    for matches, name in _TYPES:
        if matches(arrow_type):
            return name
    raise InputError(f"column type {arrow_type} has no Redshift mapping; cast it in the source first")


@dataclass
class RedshiftLoad:
    """The statements of one partition load, in order; ``copy`` is the only Redshift-specific one."""

    create: list[str]
    copy: str
    swap: list[str]


def stage_results(parquet_paths: list[str], fs: Any, prefix: str, partition_key: str, dag_run_id: str) -> pa.Schema:
    """Write the results (with the bookkeeping columns) as Parquet files under ``prefix`` on ``fs`` (fsspec,
    e.g. s3fs), replacing what an earlier attempt staged there; returns their schema."""
    schema = load_schema(parquet_paths)
    prefix = prefix.rstrip("/")
    if fs.exists(prefix):
        fs.rm(prefix, recursive=True)
    part, rows, writer, handle = 0, 0, None, None
    try:
        for batch in result_batches(parquet_paths, schema, partition_key, dag_run_id):
            if writer is None or rows >= STAGE_ROWS_PER_FILE:
                if writer:
                    writer.close()
                    handle.close()
                handle = fs.open(f"{prefix}/part-{part:05d}.parquet", "wb")
                writer, rows, part = pq.ParquetWriter(handle, schema), 0, part + 1
            writer.write_batch(batch)
            rows += batch.num_rows
    finally:
        if writer:
            writer.close()
            handle.close()
    return schema


def plan_load(table: str, schema: pa.Schema, existing: dict[str, str], s3_uri: str, iam_role: str) -> RedshiftLoad:
    """The SQL for one load: create or grow the table, then (under ``LOCK``, as Redshift has no advisory locks,
    so concurrent loads of a partition run one after the other) COPY into a temporary table, delete + insert."""
    target = quote_identifier(table)
    columns = ", ".join(quote_column(f.name) for f in schema)
    create = []
    if not existing:
        if "." in table:
            create.append(f"CREATE SCHEMA IF NOT EXISTS {target.split('.')[0]}")
        create.append(
            f"CREATE TABLE IF NOT EXISTS {target} ("
            + ", ".join(f"{quote_column(f.name)} {redshift_type(f.type)}" for f in schema)
            + ")"
        )
    else:
        create += [
            f"ALTER TABLE {target} ADD COLUMN {quote_column(name)} {type_}"
            for name, type_ in plan_columns(existing, schema, redshift_type, table)
        ]
    if "'" in s3_uri or "'" in iam_role:
        raise InputError("the S3 staging URI and IAM role must not contain quotes")
    copy = f"COPY batchkit_stage ({columns}) FROM '{s3_uri.rstrip('/')}/' IAM_ROLE '{iam_role}' FORMAT AS PARQUET"
    swap = [
        f"LOCK {target}",  # first: the LIKE below takes a weaker lock, and upgrading it deadlocks
        f"CREATE TEMP TABLE batchkit_stage (LIKE {target})",
        copy,
        f"DELETE FROM {target} WHERE partition_key = %(partition)s",
        f"INSERT INTO {target} ({columns}) SELECT {columns} FROM batchkit_stage",
        "DROP TABLE batchkit_stage",
    ]
    return RedshiftLoad(create, copy, swap)


def load_redshift(
    connect: Callable[[], Any],
    table: str,
    parquet_paths: list[str],
    partition_key: str,
    dag_run_id: str,
    fs: Any,
    stage_prefix: str,
    iam_role: str,
) -> int:
    """Stage to S3 and load through a DB-API connection to Redshift (``connect()`` returns one).

    :param stage_prefix: ``s3://bucket/path`` for this partition's staged files.
    :returns: the number of rows now in the partition.
    """
    schema = stage_results(parquet_paths, fs, stage_prefix, partition_key, dag_run_id)
    schema_name, _, table_name = table.rpartition(".")
    conn = connect()
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %(t)s "
            "AND table_schema = COALESCE(NULLIF(%(s)s, ''), current_schema())",
            {"t": table_name, "s": schema_name},
        )
        existing = {name: _redshift_name(type_) for name, type_ in cur.fetchall()}
        plan = plan_load(table, schema, existing, stage_prefix, iam_role)
        for statement in plan.create + plan.swap:
            cur.execute(statement, {"partition": partition_key} if "%(partition)s" in statement else None)
        cur.execute(f"SELECT count(*) FROM {quote_identifier(table)} WHERE partition_key = %(p)s", {"p": partition_key})
        count = cur.fetchone()[0]
        conn.commit()
        return count
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def _redshift_name(information_schema_type: str) -> str:
    """information_schema's spelling -> the DDL spelling used by ``redshift_type``."""
    spelled = information_schema_type.upper()
    return {
        "CHARACTER VARYING": "VARCHAR(65535)",
        "TEXT": "VARCHAR(65535)",
        "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP",
        "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
    }.get(spelled, spelled)
