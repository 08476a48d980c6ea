"""Redshift loads: staging to a real local S3 (moto server) and the load SQL against real PostgreSQL.

Redshift cannot run here. Everything but the Redshift-only ``COPY ... FORMAT AS PARQUET`` runs for real on
PostgreSQL 15; that one statement is checked for its exact text and played by a psycopg COPY of the files
that were staged in S3.
"""

import secrets

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.errors import InputError
from batchkit.warehouse.redshift_loader import load_redshift, plan_load, stage_results
from tests.helpers import run_concurrently, staged_run

ROLE = "arn:aws:iam::123456789012:role/redshift-copy"


@pytest.fixture
def bucket(s3fs_client):
    name = f"stage-{secrets.token_hex(4)}"
    s3fs_client.mkdir(name)
    return name


def results(tmp_path, name, ids):
    path = tmp_path / name
    pq.write_table(
        pa.table(
            {
                "id": pa.array(ids, pa.int64()),
                "status": ["ok"] * len(ids),
                "response_text": [f"answer {i}" for i in ids],
            }
        ),
        path,
    )
    return str(path)


class CopyFromStage:
    """A psycopg connection whose cursor plays Redshift's COPY from the staged S3 files."""

    def __init__(self, database, fs):
        self.conn, self.fs, self.copies = psycopg.connect(database), fs, []

    def cursor(self):
        outer, cursor = self, self.conn.cursor()

        class Cursor:
            def execute(self, sql, params=None):
                if sql.startswith("COPY batchkit_stage"):
                    outer.copies.append(sql)
                    prefix = sql.split("FROM '", 1)[1].split("'", 1)[0]
                    columns = sql.split("(", 1)[1].split(")", 1)[0]
                    with cursor.copy(f"COPY batchkit_stage ({columns}) FROM STDIN") as copy:
                        for key in sorted(outer.fs.ls(prefix)):
                            with outer.fs.open(key, "rb") as handle:
                                for row in pq.read_table(handle).to_pylist():
                                    copy.write_row(list(row.values()))
                    return None
                return cursor.execute(sql, params)

            def fetchall(self):
                return cursor.fetchall()

            def fetchone(self):
                return cursor.fetchone()

        return Cursor()

    def commit(self):
        self.conn.commit()

    def rollback(self):
        self.conn.rollback()

    def close(self):
        self.conn.close()


def test_staging_writes_and_replaces_parquet_in_s3(s3fs_client, bucket, tmp_path):
    prefix = f"{bucket}/review_sentiment/dt=2026-11-24"
    schema = stage_results([results(tmp_path, "a.parquet", list(range(10)))], s3fs_client, prefix, "2026-11-24", "r1")
    assert schema.names[-3:] == ["partition_key", "dag_run_id", "loaded_at"]
    staged = s3fs_client.ls(prefix)
    assert len(staged) == 1
    with s3fs_client.open(staged[0], "rb") as handle:
        table = pq.read_table(handle)
    assert table.num_rows == 10 and set(table.column("dag_run_id").to_pylist()) == {"r1"}
    s3fs_client.pipe(f"{prefix}/part-00009.parquet", b"left over from an older attempt")
    stage_results([results(tmp_path, "b.parquet", [1])], s3fs_client, prefix, "2026-11-24", "r2")
    assert [key.rsplit("/", 1)[1] for key in s3fs_client.ls(prefix)] == ["part-00000.parquet"]


def test_copy_statement_is_exact():
    schema = pa.schema([("id", pa.int64()), ("embedding", pa.list_(pa.float32())), ("partition_key", pa.string())])
    plan = plan_load("llm.results", schema, {}, "s3://stage/results/dt=1", ROLE)
    assert plan.copy == (
        'COPY batchkit_stage ("id", "embedding", "partition_key") FROM '
        f"'s3://stage/results/dt=1/' IAM_ROLE '{ROLE}' FORMAT AS PARQUET"
    )
    assert plan.create[1] == (
        'CREATE TABLE IF NOT EXISTS "llm"."results" ("id" BIGINT, "embedding" SUPER, "partition_key" VARCHAR(65535))'
    )
    with pytest.raises(InputError, match="quotes"):
        plan_load("results", schema, {}, "s3://x/'; DROP TABLE y; --", ROLE)


def test_load_replaces_the_partition_on_postgres(database, s3fs_client, bucket, tmp_path):
    def load(ids, partition, run):
        conn = CopyFromStage(database, s3fs_client)
        rows = load_redshift(
            lambda: conn,
            "analytics.results",
            [results(tmp_path, f"{run}.parquet", ids)],
            partition,
            run,
            s3fs_client,
            f"s3://{bucket}/results/{partition}",
            ROLE,
        )
        return rows, conn.copies

    assert load([1, 2, 3], "d1", "r1")[0] == 3
    assert load([4], "d2", "r2")[0] == 1
    rows, copies = load([1, 2], "d1", "r3")
    assert rows == 2 and copies[0].endswith(f"IAM_ROLE '{ROLE}' FORMAT AS PARQUET")
    with psycopg.connect(database) as con:
        got = con.execute(
            "SELECT partition_key, dag_run_id, count(*) FROM analytics.results GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
    assert got == [("d1", "r3", 2), ("d2", "r2", 1)]


def test_concurrent_loads_of_the_same_partition_keep_its_rows_once(database, s3fs_client, bucket, tmp_path):
    path = results(tmp_path, "same.parquet", list(range(5000)))

    def load(run):
        stage = f"s3://{bucket}/same/d/{run}"
        conn = CopyFromStage(database, s3fs_client)
        return load_redshift(lambda: conn, "same_partition", [path], "d", run, s3fs_client, stage, ROLE)

    load("first")  # creates the table; concurrent first loads are not the race under test
    assert run_concurrently(load, "abcd") == []
    with psycopg.connect(database) as con:
        got = con.execute("SELECT count(*), count(DISTINCT id) FROM same_partition WHERE partition_key = 'd'")
        assert got.fetchall() == [(5000, 5000)]


def test_load_operator_stages_through_an_aws_connection(
    database, s3_endpoint, s3fs_client, bucket, tmp_path, monkeypatch
):
    """The operator's Redshift path up to the COPY, which PostgreSQL rejects: staging happened, nothing loaded."""
    import json
    from urllib.parse import urlsplit

    from airflow.sdk.exceptions import AirflowFailException

    from openai_batch.operators import LoadToWarehouseOperator

    url = urlsplit(database)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_LOCAL",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    extra = {"aws_conn_id": "aws_local", "s3_staging": f"s3://{bucket}/redshift", "iam_role": ROLE}
    monkeypatch.setenv(
        "AIRFLOW_CONN_RS",
        json.dumps(
            {
                "conn_type": "redshift",
                "host": url.hostname,
                "port": url.port,
                "login": "postgres",
                "schema": url.path[1:],
                "extra": extra,
            }
        ),
    )
    staged, context = staged_run(tmp_path, [1, 2])
    with psycopg.connect(database, autocommit=True) as con:  # PostgreSQL stands in: give it Redshift's SUPER
        con.execute("DO $$ BEGIN CREATE DOMAIN super AS text; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    operator = LoadToWarehouseOperator(
        task_id="load", database="unused", table="rs_results", warehouse_conn_id="rs", results=[], **staged
    )
    with pytest.raises(psycopg.errors.SyntaxError, match="IAM_ROLE"):
        operator.execute(context)
    assert s3fs_client.ls(f"{bucket}/redshift/rs_results/2026-11-24/manual__1") == [
        f"{bucket}/redshift/rs_results/2026-11-24/manual__1/part-00000.parquet"
    ]
    with psycopg.connect(database) as con:
        assert con.execute("SELECT to_regclass('rs_results')").fetchone() == (None,)  # rolled back

    monkeypatch.setenv("AIRFLOW_CONN_RS", json.dumps({"conn_type": "redshift", "host": "h", "extra": {}}))
    with pytest.raises(AirflowFailException, match="needs s3_staging, iam_role"):
        operator.execute(context)


def test_iam_authentication_takes_temporary_credentials_from_the_amazon_provider(
    database, s3_endpoint, s3fs_client, bucket, tmp_path, monkeypatch
):
    """``"iam": true``: the login comes from redshift:GetClusterCredentials (moto) through the provider's hook, as
    ``IAM:<login>``; PostgreSQL (trust auth) stands in for the cluster and knows only that role."""
    import json
    from urllib.parse import urlsplit

    import boto3

    from openai_batch.operators import LoadToWarehouseOperator

    aws = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    boto3.client("redshift", endpoint_url=s3_endpoint, **aws).create_cluster(
        ClusterIdentifier="rs-iam", NodeType="ra3.xlplus", MasterUsername="admin", MasterUserPassword="Passw0rd!"
    )
    with psycopg.connect(database, autocommit=True) as con:
        con.execute(
            'DO $$ BEGIN CREATE ROLE "IAM:etl" LOGIN SUPERUSER; EXCEPTION WHEN duplicate_object THEN NULL; END $$'
        )
        con.execute("DO $$ BEGIN CREATE DOMAIN super AS text; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    aws_conn = {"conn_type": "aws", "login": "testing", "password": "testing"}
    aws_conn["extra"] = {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_LOCAL", json.dumps(aws_conn))
    url = urlsplit(database)
    extra = {"aws_conn_id": "aws_local", "s3_staging": f"s3://{bucket}/redshift", "iam_role": ROLE}
    extra |= {"iam": True, "cluster_identifier": "rs-iam"}
    redshift = {"conn_type": "redshift", "host": url.hostname, "port": url.port, "login": "etl", "schema": url.path[1:]}
    monkeypatch.setenv("AIRFLOW_CONN_RS", json.dumps({**redshift, "extra": extra}))
    staged, context = staged_run(tmp_path, [1, 2])
    operator = LoadToWarehouseOperator(
        task_id="load", database="unused", table="rs_iam", warehouse_conn_id="rs", results=[], **staged
    )
    with pytest.raises(psycopg.errors.SyntaxError, match="IAM_ROLE"):  # connected as IAM:etl; COPY is Redshift's
        operator.execute(context)

    monkeypatch.setenv("AIRFLOW_CONN_RS", json.dumps({**redshift, "extra": {**extra, "iam": False}}))
    with pytest.raises(psycopg.OperationalError, match='role "etl" does not exist'):
        operator.execute(context)
