"""Integration fixtures: a moto S3 server, a fresh PostgreSQL database, notification receivers (SMTP and Slack)."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.receivers import Receivers, notification_receivers


@contextmanager
def moto_server(log_dir: Path, **env: str) -> Iterator[str]:
    """A real local S3 (and IAM) endpoint: moto's server on 127.0.0.1 with a random port."""
    import os
    import subprocess
    import sys

    import httpx

    from batchkit.emulator.launcher import free_port

    port = free_port()
    with (log_dir / f"moto-{port}.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture
def locked_s3(tmp_path) -> Iterator[tuple[str, dict[str, str]]]:
    """An S3 endpoint that enforces IAM (after the first 4 set-up calls): a bucket ``locked`` and the access key of
    a user without any policy, for whom every S3 call is denied."""
    import boto3

    with moto_server(tmp_path, INITIAL_NO_AUTH_ACTION_COUNT="4") as url:
        admin = {
            "endpoint_url": url,
            "aws_access_key_id": "a",
            "aws_secret_access_key": "a",
            "region_name": "us-east-1",
        }
        boto3.client("s3", **admin).create_bucket(Bucket="locked")
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        yield url, {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@pytest.fixture
def s3fs_client(s3_endpoint, monkeypatch):
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3fs.S3FileSystem(
        key="testing", secret="testing", client_kwargs={"endpoint_url": s3_endpoint}, use_listings_cache=False
    )


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A scratch database on the machine's PostgreSQL (127.0.0.1:5432, trust auth), dropped afterwards."""
    import secrets

    import psycopg

    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"batchkit_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[Receivers, dict[str, str]]]:
    """Local SMTP and Slack webhook receivers and the settings that send the DAG's notifications there."""
    with notification_receivers() as found:
        yield found
