"""Warehouse selection and connection plumbing for the load step, in one place: the only reader of a warehouse
connection's type and extras (DuckDB file, PostgreSQL via ADBC, Redshift via S3 + COPY)."""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from batchkit.memory import DEFAULT_TASK_MEMORY_MB


def load_partition(
    warehouse_conn_id: str | None,
    database: str,
    table: str,
    paths: list[str],
    partition: str,
    run_id: str,
    task_memory_mb: int = DEFAULT_TASK_MEMORY_MB,
) -> tuple[str, int]:
    """Replace ``partition``'s rows of ``table`` with the merged result files at ``paths``: in the DuckDB file
    ``database`` without a connection, else through the postgres or redshift connection ``warehouse_conn_id``.

    :returns: where the table lives (``duckdb:/path``, ``postgres://host:port/db``...) and the rows loaded.
    """
    if not warehouse_conn_id:
        from batchkit.warehouse.duckdb_loader import load_duckdb

        database = _duckdb_file(database)
        return f"duckdb:{database}", load_duckdb(
            database, table, paths, partition, run_id, task_memory_mb=task_memory_mb
        )
    conn = warehouse_connection(warehouse_conn_id)
    if conn.conn_type == "redshift":
        return _load_redshift(conn, warehouse_conn_id, table, paths, partition, run_id)
    from batchkit.warehouse.postgres_loader import load_postgres

    where = f"postgres://{conn.host}:{conn.port or 5432}/{conn.schema}"
    return where, load_postgres(_postgres_uri(warehouse_conn_id), table, paths, partition, run_id)


def check_table(warehouse_conn_id: str | None, database: str, table: str, schema: Any) -> None:
    """Raise now what the load would raise for merged rows of ``schema`` (Arrow, before the bookkeeping columns)
    against ``table`` as it is; changes nothing. Redshift tables are checked by the load only."""
    from batchkit.warehouse import with_load_columns

    schema = with_load_columns(schema)
    if not warehouse_conn_id:
        from batchkit.warehouse.duckdb_loader import check_duckdb

        check_duckdb(_duckdb_file(database), table, schema)
    elif warehouse_connection(warehouse_conn_id).conn_type != "redshift":
        from batchkit.warehouse.postgres_loader import check_postgres

        check_postgres(_postgres_uri(warehouse_conn_id), table, schema)


def _duckdb_file(database: str) -> str:
    from openai_batch.staging import refuse_relative

    refuse_relative(
        database,
        "give the DuckDB file an absolute path on storage every worker shares (the openai_batch_duckdb "
        "Variable or OPENAI_BATCH_DUCKDB), or use a postgres/redshift warehouse_conn_id",
    )
    return os.path.abspath(database)


def _postgres_uri(warehouse_conn_id: str) -> str:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    uri = PostgresHook(postgres_conn_id=warehouse_conn_id).get_uri()
    return "postgresql://" + uri.split("://", 1)[1]  # ADBC takes libpq URIs (no SQLAlchemy driver suffix)


def warehouse_connection(warehouse_conn_id: str) -> Any:
    """The Airflow connection ``warehouse_conn_id``, refused unless it exists and is postgres or redshift. The
    split asks first, so a run that could not load is refused before any request is sent."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(warehouse_conn_id)
    except AirflowNotFoundException:
        raise AirflowFailException(
            f"warehouse connection {warehouse_conn_id!r} does not exist: create it (a postgres or redshift "
            "connection), or leave warehouse_conn_id empty for DuckDB"
        ) from None
    if conn.conn_type not in ("postgres", "postgresql", "redshift"):
        raise AirflowFailException(
            f"connection {warehouse_conn_id!r} is of type {conn.conn_type!r}; "
            "use a postgres or redshift connection, or leave it empty for DuckDB"
        )
    return conn


def _load_redshift(
    conn: Any, warehouse_conn_id: str, table: str, paths: list[str], partition: str, run_id: str
) -> tuple[str, int]:
    """Stage to S3 with the connection's ``aws_conn_id`` and COPY with its ``iam_role`` (from its extra).
    With ``"iam": true`` in the extra the database login is a temporary IAM credential, as the Amazon
    provider's Redshift connection defines it (``cluster_identifier``, or ``is_serverless`` and
    ``serverless_work_group``)."""
    import psycopg
    import s3fs
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from batchkit.warehouse.redshift_loader import load_redshift

    extra = conn.extra_dejson
    missing = [key for key in ("s3_staging", "iam_role") if not extra.get(key)]
    if missing:
        raise AirflowFailException(
            f"redshift connection {warehouse_conn_id!r} needs {', '.join(missing)} in its extra "
            "(s3_staging: s3://bucket/prefix, iam_role: the ARN Redshift's COPY assumes)"
        )
    aws_conn_id = extra.get("aws_conn_id", "aws_default")
    s3 = S3Hook(aws_conn_id=aws_conn_id)
    credentials = s3.get_credentials()
    endpoint = s3.conn_config.endpoint_url
    fs = s3fs.S3FileSystem(
        key=credentials.access_key,
        secret=credentials.secret_key,
        token=credentials.token,
        client_kwargs={"endpoint_url": endpoint} if endpoint else {},
    )
    stage = f"{extra['s3_staging'].rstrip('/')}/{table}/{partition}/{run_id}"

    def connect() -> Any:
        user, password, port = conn.login, conn.password, conn.port or 5439
        if extra.get("iam"):  # temporary credentials from the Amazon provider (cluster or Serverless)
            from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

            hook = RedshiftSQLHook(redshift_conn_id=warehouse_conn_id, aws_conn_id=aws_conn_id)
            user, password, port = hook.get_iam_token(conn)
        return psycopg.connect(host=conn.host, port=port, user=user, password=password, dbname=conn.schema)

    rows = load_redshift(connect, table, paths, partition, run_id, fs, stage, extra["iam_role"])
    return f"redshift://{conn.host}:{conn.port or 5439}/{conn.schema}", rows


def table_uri(warehouse: str, table: str) -> str:
    """The Asset URI of ``table`` in ``warehouse`` (as ``load_partition`` names it); SQL warehouses put the schema
    (default ``public``) between database and table, as Airflow's ``postgres://`` assets require."""
    if warehouse.startswith("duckdb:"):
        return f"{warehouse}/{table}"
    schema, _, name = table.rpartition(".")
    return f"{warehouse}/{schema or 'public'}/{name}"
