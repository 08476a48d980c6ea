"""The main DAG with its source AND its staging in S3 (a real moto server), through an Airflow ``aws``
connection whose ``endpoint_url`` extra points at it: the components get no AWS environment variables, so every
S3 access goes through the connection. A second run prunes the first run's staging area (tiny retention)."""

import json
import time

import duckdb
import pytest

from tests.helpers import running_stack, s3_lake

DAG_ID = "openai_batch_inference"
PARTITION, ROWS = "2026-11-24", 1200


@pytest.fixture(scope="module")
def lake(s3_endpoint, tmp_path_factory):
    return s3_lake(s3_endpoint, tmp_path_factory.mktemp("partition"), PARTITION, ROWS, "lake")


@pytest.fixture(scope="module")
def stack(lake, s3_endpoint, tmp_path_factory):
    _, bucket = lake
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    }
    settings = {
        "AIRFLOW_CONN_LAKE": json.dumps(connection),
        "OPENAI_BATCH_STORAGE_CONN_ID": "lake",
        "OPENAI_BATCH_STAGING": f"s3://{bucket}/staging",
        "OPENAI_BATCH_ALLOWED_SOURCES": f"s3://{bucket}/reviews",
        "OPENAI_BATCH_STAGING_RETENTION_DAYS": str(5 / 86400),  # 5 seconds: the second run prunes the first
    }
    args = ("--seconds-per-request", "0.002", "--validation-seconds", "0")
    with running_stack(
        tmp_path_factory.mktemp("stack"), {}, DAG_ID, poll_seconds=2, emulator_args=args, extra_env=settings
    ) as stack:
        yield stack


def run(stack, run_id: str, bucket: str) -> dict:
    conf = {"partition": PARTITION, "source": f"s3://{bucket}/reviews/dt={{partition}}", "max_requests_per_file": 500}
    stack.trigger(DAG_ID, run_id, conf)
    return stack.wait_for_run(DAG_ID, run_id, timeout=300, progress=lambda message: None)


def test_s3_source_and_staging_end_to_end(stack, lake):
    fs, bucket = lake
    outcome = run(stack, "s3_1", bucket)
    assert outcome["state"] == "success", outcome["tasks"]

    area = f"{bucket}/staging/{DAG_ID}/{PARTITION}/s3_1"
    staged = sorted(p.removeprefix(area + "/") for p in fs.find(area))
    assert staged == [
        "inputs/batch-00000.jsonl",
        "inputs/batch-00001.jsonl",
        "inputs/batch-00002.jsonl",
        "inputs/manifest.json",
        "inputs/rows.parquet",
        "merged/result.parquet",
        "outputs/00000/attempt-1.jsonl",
        "outputs/00001/attempt-1.jsonl",
        "outputs/00002/attempt-1.jsonl",
        "report/report.html",  # the run report, on S3 like the rest of the run's staging
        "report/report.png",
    ]
    lines = fs.cat(f"{area}/outputs/00000/attempt-1.jsonl").splitlines()
    assert len(lines) == 500 and json.loads(lines[0])["response"]["status_code"] == 200
    assert not (stack.data_dir / "staging").exists(), "nothing may be staged on local disk"
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        assert con.execute(
            "SELECT count(*), count(DISTINCT review_id), count(*) FILTER (WHERE status = 'ok') FROM review_sentiment"
        ).fetchone() == (ROWS, ROWS, ROWS)

    time.sleep(6)  # older than the 5-second retention
    second = run(stack, "s3_2", bucket)
    assert second["state"] == "success", second["tasks"]
    assert not fs.exists(area), "the first run's staging area is past retention"
    assert fs.exists(f"{bucket}/staging/{DAG_ID}/{PARTITION}/s3_2/inputs/manifest.json")
    assert not fs.exists(f"{bucket}/staging/{DAG_ID}/{PARTITION}/s3_2/inputs/batch-00000.jsonl"), "all reused"
    assert len(fs.ls(f"{bucket}/staging/{DAG_ID}/{PARTITION}/_ledger/batches")) == 3, "the ledger outlives pruning"
    assert len(fs.ls(f"{bucket}/reviews/dt={PARTITION}")) == 3, "the source is never pruned"
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        assert con.execute("SELECT count(*), min(dag_run_id) FROM review_sentiment").fetchone() == (ROWS, "s3_2")
