"""Shared fixtures: small Parquet partitions written per test, emulators started per test; Airflow confined to a
throwaway home."""

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.emulator.launcher import EmulatorProcess, start_emulator
from tests.emulator_client import FAST

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


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Callable[..., EmulatorProcess]]:
    """Start emulators with extra CLI args; all are stopped at teardown."""
    started: list[EmulatorProcess] = []

    def start(*args: str, data_dir: Path | None = None, **kw) -> EmulatorProcess:
        handle = start_emulator(data_dir or tmp_path / f"emu{len(started)}", *FAST, *args, **kw)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
