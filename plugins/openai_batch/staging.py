"""Where a run keeps its files: local disk or object storage, through Airflow's ``ObjectStoragePath``.

A run's files live in ``<staging_root>/<dag_id>/<partition>/<run_id>/{inputs,outputs,errors,merged}`` (a pipeline
in a task group: ``<staging_root>/<dag_id>/_pipelines/<pipeline_id>/<partition>/...``, ``pipeline_root``). Work
happens in a local scratch directory; finished files are published into the staging area whole (a rename on
disk, a completed upload on S3), so a retry on another worker finds either the whole file or none.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from batchkit import storage
from batchkit.ledger import LEDGER_DIR, Ledger
from batchkit.storage import pipeline_parts
from openai_batch.context import TaskRun

REPORT_HTML = ("report", "report.html")  # the run report, under the run's staging area


def connect_storage(url: str, conn_id: str | None) -> ObjectStoragePath:
    """``url`` as an ObjectStoragePath; remote ones also become readable by ``batchkit`` with the connection's
    credentials (an ``aws`` connection for ``s3://``, whose ``endpoint_url`` extra points at S3-compatible stores).
    """
    if not storage.is_remote(url):
        local = url.removeprefix("file://")
        refuse_relative(
            local,
            "use an absolute path on shared storage or an s3:// URL (OPENAI_BATCH_STAGING, OPENAI_BATCH_DATA, "
            "the source Param)",
        )
        return ObjectStoragePath(Path(local).resolve().as_uri())
    path = ObjectStoragePath(url, conn_id=conn_id or None)
    storage.use_filesystem(path.protocol, path.fs)
    return path


def refuse_relative(path: str, fix: str) -> None:
    """Refuse a relative local ``path`` unless every task runs on this machine: each worker would resolve it in
    its own working directory. ``fix`` says what to use instead."""
    if not Path(path).is_absolute() and not _single_host():
        raise AirflowFailException(
            f"{path!r} is a relative path, and with the {_executor()} each worker would resolve it in its own "
            f"working directory: {fix}"
        )


def _executor() -> str:
    from airflow.sdk.configuration import conf

    return conf.get("core", "executor")


def _single_host() -> bool:
    """Every task runs on this machine (Local or Sequential executor), so relative paths mean one place."""
    return all(
        name.strip().split(".")[-1] in ("LocalExecutor", "SequentialExecutor") for name in _executor().split(",")
    )


def plain_url(path: ObjectStoragePath) -> str:
    """What ``batchkit`` opens: an absolute local path, or ``protocol://bucket/key`` (no connection id in it)."""
    return path.path if path.protocol in ("file", "local") else f"{path.protocol}://{path.path}"


def pipeline_root(staging_root: str, run: TaskRun, conn_id: str | None = None) -> ObjectStoragePath:
    """Where the run's pipeline keeps its partitions (``storage.pipeline_parts``); ``prune`` works below it."""
    return connect_storage(staging_root, conn_id).joinpath(*pipeline_parts(run.dag_id, run.pipeline))


class RunStaging:
    """One DAG run's staging area (see the module docstring)."""

    def __init__(self, staging_root: str, run: TaskRun, conn_id: str | None = None) -> None:
        run_id = re.sub(r"[^A-Za-z0-9._-]", "_", run.run_id)
        self.root = pipeline_root(staging_root, run, conn_id) / run.partition / run_id
        self.remote = storage.is_remote(plain_url(self.root))

    def ledger(self) -> Ledger:
        """The request ledger of this run's DAG and partition, shared by all its runs."""
        return Ledger(plain_url(self.root.parent / LEDGER_DIR))

    def url(self, *parts: str) -> str:
        return plain_url(self.root.joinpath(*parts))

    def report_url(self) -> str:
        """Where the report step writes ``report.html`` (known from the split on, for links and notifications)."""
        return self.url(*REPORT_HTML)

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A private local directory, removed afterwards; on local staging it sits beside the run's files so
        publishing is a rename."""
        if self.remote:
            directory = Path(tempfile.mkdtemp(prefix="openai-batch-"))
        else:
            Path(self.root.path).mkdir(parents=True, exist_ok=True)
            directory = Path(tempfile.mkdtemp(prefix=".scratch-", dir=self.root.path))
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def publish(self, local: Path, *parts: str) -> str:
        """Put a finished local file at ``parts`` under the run's area; returns its URL."""
        target = self.url(*parts)
        storage.put_file(local, target)
        return target
