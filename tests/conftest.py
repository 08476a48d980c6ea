"""Shared fixtures: small Parquet partitions written per test; Airflow confined to a throwaway home."""

import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# Airflow reads its home at import time: keep tests away from ~/airflow and from any user config.
os.environ["AIRFLOW_HOME"] = os.environ.get("BATCHKIT_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="airflow-home-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@pytest.fixture
def write_parquet(tmp_path: Path):
    """Write a dict of columns (or a pyarrow Table) as a Parquet file under tmp_path and return its path."""

    def write(name: str, data: dict | pa.Table) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(data if isinstance(data, pa.Table) else pa.table(data), path)
        return path

    return write
