"""Step 2: create a batch file's batch once, then follow it (and its resubmissions) until all are terminal."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from batchkit.batch_api import DEFAULT_ENDPOINT
from batchkit.results.answers import ResultStatus
from openai_batch.attempts import AttemptLoop
from openai_batch.context import TaskRun
from openai_batch.errors import airflow_errors
from openai_batch.links import OpenAIBatchLink
from openai_batch.queue_wait import wait_then_retry
from openai_batch.retention import DEFAULT, Lifetimes, as_lifetime
from openai_batch.statuses import METADATA_KEY

if TYPE_CHECKING:
    from openai.types import Batch

    from batchkit.ledger import Claim, Ledger
    from openai_batch.vendors.base import BatchVendor


class SubmitBatchOperator(AttemptLoop, BaseOperator):
    """Upload one batch file, create its batch once, and (by default) hold this task until the file's batches
    are all terminal.

    The batch's key (DAG, partition, file digest, attempt) is claimed in the partition's ledger before the
    batch is created (``claims.submit_once``): a retry, a clear or an overlapping run of the same partition
    adopts the batch the claim names, whatever its status, so no file is ever paid for twice.

    While the batch runs the task defers to the triggerer (no worker slot), records the results in the ledger
    when it ends and resubmits retryable lines (429, 5xx, expired, or unfinished at our own deadline cancel) up
    to ``max_attempts`` batches (``attempts.AttemptLoop``). Because the task stays deferred until then,
    ``max_active_tis_per_dagrun`` (and a pool with ``--include-deferred``) bounds the batches in flight.

    :param batch_file: a descriptor from ``SplitPartitionOperator`` (templated); its file is streamed from
        staging (local or ``s3://`` through ``storage_conn_id``) to the Files API.
    :param staging_root: as for ``SplitPartitionOperator`` (the ledger lives there).
    :param endpoint: Batch API endpoint; ``completion_window`` and ``metadata`` are passed to ``batches.create``.
    :param expires_after: how long the vendor keeps each uploaded input file (default 7 days; None: the vendor's
        default); ``output_expires_after``: each batch's output and error files (a timedelta, or the API's
        ``{"anchor": "created_at", "seconds": N}``). At least the completion window + 1 h (``retention``).
    :param keep_vendor_files: keep a batch's files at the vendor once its answers are in the ledger (until they
        expire); False (default): delete them then.
    :param wait_for_completion: follow the batch to the end here (default); False returns once it is created.
    :param pipeline_id: as for ``SplitPartitionOperator``.
    :param conn_id: the batch vendor's connection (templated; ``vendors`` picks the adapter); ``allowed_api_conns``
        the ones it may name (``None``: any).
    :returns: the first batch's id (also ``self.batch_id`` once known, for the ``OpenAIBatchLink``).
    """

    template_fields = ("batch_file", "staging_root", "endpoint", "metadata", "max_attempts", "conn_id")
    operator_extra_links = (OpenAIBatchLink(),)
    batch_id: str | None = None

    def __init__(
        self,
        *,
        batch_file: dict[str, Any],
        staging_root: str,
        endpoint: str = DEFAULT_ENDPOINT,
        conn_id: str = "openai_default",
        storage_conn_id: str | None = None,
        completion_window: str = "24h",
        metadata: dict[str, str] | None = None,
        expires_after: timedelta | None = DEFAULT,
        output_expires_after: timedelta | dict[str, Any] | None = DEFAULT,
        keep_vendor_files: bool = False,
        max_attempts: int = 3,
        poll_interval: float = 60,
        wait_for_completion: bool = True,
        queue_wait: timedelta = timedelta(minutes=10),
        max_queue_waits: int = 12,
        pipeline_id: str = "",
        allowed_api_conns: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_file, self.endpoint, self.conn_id, self.staging_root = batch_file, endpoint, conn_id, staging_root
        self.allowed_api_conns = allowed_api_conns
        self.pipeline_id = pipeline_id
        self.storage_conn_id, self.queue_wait, self.max_queue_waits = storage_conn_id, queue_wait, max_queue_waits
        self.completion_window, self.metadata = completion_window, metadata
        self.lifetimes = Lifetimes(as_lifetime(expires_after), as_lifetime(output_expires_after), keep_vendor_files)
        self.max_attempts, self.poll_interval, self.wait_for_completion = (
            max_attempts,
            poll_interval,
            wait_for_completion,
        )

    def execute(self, context: Any, waits: int = 0, event: Any = None) -> str:
        batch = self._create_once(context, waits)
        context["task_state_store"].set("batch_id", batch.id)
        self.batch_id = batch.id
        self.log.info("batch %s (%s) holds %d requests", batch.id, batch.status, self.batch_file["requests"])
        if not self.wait_for_completion:
            return batch.id
        return self.follow(context, first=batch)

    def follow(
        self, context: Any, event: dict[str, Any] | None = None, waited: bool = False, waits: int = 0, first: Any = None
    ) -> str:
        """Resumed here after every deferral until the file's batches are all terminal."""
        chain, latest, _, retry = self.follow_attempts(context, "follow", event, waited, waits, first)
        ok = sum(1 for status, *_ in latest.values() if status == ResultStatus.OK)
        self.log.info(
            "batch(es) %s done: %d of %d request(s) answered ok%s",
            ", ".join(b.id for b in chain),
            ok,
            len(latest),
            f"; {len(retry)} still unanswered after {len(chain)} attempts" if retry else "",
        )
        return chain[0].id

    def first_batch(self, context: Any, vendor: BatchVendor, claim: Claim | None, ledger: Ledger) -> Batch:
        saved = context["task_state_store"].get("batch_id")
        batch = self._batch(vendor, ledger, saved) if saved else super().first_batch(context, vendor, claim, ledger)
        self.batch_id = batch.id  # a resumed run: the link stays
        return batch

    def _create_once(self, context: Any, waits: int) -> Batch:
        from openai_batch.claims import submit_once
        from openai_batch.policy import check_api_conn
        from openai_batch.staging import RunStaging, connect_storage
        from openai_batch.vendors import for_connection
        from openai_batch.vendors.base import CreateRefused

        check_api_conn(self.conn_id, self.allowed_api_conns)
        vendor, run = for_connection(self.conn_id), TaskRun.of(context, self.pipeline_id)
        sha, partition = self.batch_file["sha256"], self.batch_file["partition"]
        connect_storage(self.batch_file["path"], self.storage_conn_id)
        ledger = RunStaging(self.staging_root, run, self.storage_conn_id).ledger()
        saved = context["task_state_store"].get("batch_id")
        if saved and vendor.limits.metadata:  # recorded by an earlier try (also before the ledger): adopt it if it
            batch = self._batch(vendor, ledger, saved)  # is this file's (without metadata, the claim decides below)
            if (batch.metadata or {}).get("file_sha256") == sha[:32]:  # (a deleted one: its claim decides below)
                self.log.info("adopting batch %s (%s) recorded by an earlier try", batch.id, batch.status)
                return batch
            self.log.warning("batch %s of an earlier try was made from another file; not adopting it", batch.id)
        key = self.attempt_key(run, 1)
        metadata = {
            **(self.metadata or {}),
            "airflow_dag_id": run.dag_id,
            "airflow_run_id": run.run_id[:512],
            "airflow_task": f"{run.task_id}[{run.map_index}]",
            "partition": partition,
            "file_sha256": sha[:32],
            METADATA_KEY: key,
        }
        try:
            with airflow_errors(f"submitting {self.batch_file['path']}"):
                batch, _ = submit_once(
                    vendor,
                    ledger,
                    key,
                    run.actor,
                    sha,
                    self.batch_file["path"],
                    self.log,
                    int(self.batch_file["requests"]),
                    endpoint=self.endpoint,
                    completion_window=self.completion_window,
                    metadata=metadata,
                    lifetimes=self.lifetimes,
                )
                return batch
        except CreateRefused as exc:
            wait_then_retry(self, waits, "execute", {}, f"batch creation refused: {exc.message}")
            raise AssertionError("unreachable: wait_then_retry defers or raises") from exc
