"""Follow one batch file's attempts to the end: wait for the latest batch on the triggerer, record each terminal
batch in the ledger once, resubmit the lines a later attempt may answer, until nothing is left or
``max_attempts`` batches were made.

The submit step runs this loop right after creating the first batch and holds its task slot until the file's
batches are all terminal, so ``max_active_tis_per_dagrun`` on submit bounds the batches in flight. The collect
step runs it again and normally finds everything done (it picks the chain up after a clear or an upgrade).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from batchkit.results.answers import ResultStatus, best_first
from openai_batch.context import TaskRun, batch_key
from openai_batch.errors import airflow_errors
from openai_batch.queue_wait import wait_then_retry
from openai_batch.statuses import DEADLINE_PASSED, METADATA_KEY, QUEUE_FULL, TERMINAL, BatchStatus, failure, queue_full

if TYPE_CHECKING:
    from openai.types import Batch

    from batchkit.ledger import Claim, Ledger
    from openai_batch.staging import RunStaging
    from openai_batch.vendors.base import BatchVendor

CANCEL_GRACE = timedelta(hours=1)  # how long a batch we cancelled for its deadline may take to stop

Latest = dict[str, tuple[str, "int | None", "str | None", str]]  # custom_id -> (status, http, code, batch_id)


class AttemptLoop:
    """Mixin for operators with ``batch_file``, ``staging_root``, ``conn_id``, ``storage_conn_id``,
    ``max_attempts``, ``poll_interval``, ``completion_window``, ``queue_wait``, ``max_queue_waits`` and
    ``pipeline_id``."""

    def follow_attempts(
        self,
        context: Any,
        method: str,
        event: dict[str, Any] | None = None,
        waited: bool = False,
        waits: int = 0,
        first: Batch | None = None,
    ) -> tuple[list[Batch], Latest, int, set[str]]:
        """Run the loop; deferrals resume in ``method``, which calls this again.

        :returns: the attempt chain, each request's best result, how many results came from resubmissions, and
            the requests still unanswered.
        """
        from batchkit.ledger import is_retryable
        from openai_batch.staging import RunStaging, connect_storage
        from openai_batch.vendors import for_connection

        run = TaskRun.of(context, self.pipeline_id)
        vendor = for_connection(self.conn_id)
        connect_storage(self.batch_file["path"], self.storage_conn_id)
        staging = RunStaging(self.staging_root, run, self.storage_conn_id)
        ledger = staging.ledger()
        claims = self._claims(run, ledger)  # read once per resume; kept current below
        chain = [first or self.first_batch(context, vendor, claims[0])]
        chain += [vendor.get_batch(claim.batch_id) for claim in claims[1:] if claim and claim.batch_id]
        if isinstance(event, dict) and event.get("status") == DEADLINE_PASSED:
            self._cancel_for_deadline(vendor, ledger, chain, claims[-1])
        with airflow_errors(f"following the batches of {self.batch_file['path']}"):
            while True:
                if chain[-1].status not in TERMINAL:
                    self._defer(vendor, chain[-1], claims[-1], method)
                for attempt, batch in enumerate(chain, start=1):
                    if not ledger.has_results(batch.id):
                        self._record(vendor, staging, ledger, batch, attempt, self.attempt_key(run, attempt))
                latest, resubmitted = self._latest(ledger, chain)
                ours = {c.batch_id for c in claims if c is not None and c.cancelled_at and c.batch_id}
                retry = {
                    custom_id
                    for custom_id, (status, http_status, code, batch_id) in latest.items()
                    if is_retryable(status, http_status, code) or (code == "batch_cancelled" and batch_id in ours)
                }
                refused = sum(1 for b in chain if b.status == BatchStatus.FAILED and queue_full(b.errors))
                if not retry or len(chain) - refused >= int(self.max_attempts):  # a refusal is not an attempt
                    return chain, latest, resubmitted, retry
                if not waited and queue_full(chain[-1].errors):  # the chain counts the waits: none is forgotten
                    reason = f"batch {chain[-1].id} was refused for the enqueued-token limit"
                    wait_then_retry(self, refused - 1, method, {"waited": True}, reason)
                batch, claim = self._resubmit(run, vendor, staging, ledger, chain, retry, waits, method)
                chain.append(batch)
                claims.append(claim)
                waited = False

    def first_batch(self, context: Any, vendor: BatchVendor, claim: Claim | None) -> Batch:
        """Attempt 1's batch, as its ledger claim (``claim``) names it."""
        if claim is None or not claim.batch_id:
            raise AirflowException(f"no batch was recorded for {self.batch_file['path']}; clear the submit task")
        return vendor.get_batch(claim.batch_id)

    def attempt_key(self, run: TaskRun, attempt: int) -> str:
        scope = self.batch_file.get("key_scope", "")
        partition, sha = self.batch_file["partition"], self.batch_file["sha256"]
        return batch_key(run.dag_id, partition, sha, attempt, scope, run.pipeline)

    def _claims(self, run: TaskRun, ledger: Ledger) -> list[Claim | None]:
        """The ledger's claims of the file's attempts, one read each: attempt 1's (None before the ledger
        existed), then each resubmission's that names a batch; item ``n`` belongs to attempt ``n + 1``."""
        claims = [ledger.claim_of(self.attempt_key(run, 1))]
        while (claim := ledger.claim_of(self.attempt_key(run, len(claims) + 1))) and claim.batch_id:
            claims.append(claim)
        return claims

    def _window(self) -> timedelta:
        window = self.completion_window
        return window if isinstance(window, timedelta) else timedelta(hours=int(str(window).rstrip("h")))

    def _defer(self, vendor: BatchVendor, batch: Batch, claim: Claim | None, method: str) -> None:
        """Wait on the triggerer for ``batch`` (the latest, with its ``claim``); the deadline is anchored on the
        batch's creation (window + 1 h; a vendor whose batches never expire: its ``max_runtime``), or on our own
        cancel of it."""
        from openai_batch.triggers import OpenAIBatchStatusTrigger, deferral_timeout

        if claim is not None and claim.cancelled_at:
            deadline = claim.cancelled_at + CANCEL_GRACE.total_seconds()
        else:
            deadline = vendor.deadline(batch.created_at, self._window())
        self.log.info("batch %s is %s; waiting on the triggerer", batch.id, batch.status)
        self.defer(
            trigger=OpenAIBatchStatusTrigger(
                batch_id=batch.id, conn_id=self.conn_id, poll_interval=self.poll_interval, deadline=deadline
            ),
            method_name=method,
            timeout=None if deadline is None else deferral_timeout(deadline),
        )

    def _cancel_for_deadline(
        self, vendor: BatchVendor, ledger: Ledger, chain: list[Batch], claim: Claim | None
    ) -> None:
        """The deadline passed: cancel the latest batch (its answered lines are kept; its unfinished lines go into
        the next attempt, unlike a cancel by a person), or give up when it did not even stop after our cancel.

        :param claim: the latest batch's claim; its ``cancelled_at`` is recorded (in the ledger and on it).
        """
        batch = chain[-1]
        if claim is not None and claim.cancelled_at:
            raise AirflowException(f"batch {batch.id} did not stop within {CANCEL_GRACE} of being cancelled")
        self.log.warning("batch %s passed its deadline; cancelling it", batch.id)
        vendor.cancel_batch(batch.id)
        if claim is not None:
            ledger.record_cancel(claim)
        chain[-1] = vendor.get_batch(batch.id)

    def _record(
        self, vendor: BatchVendor, staging: RunStaging, ledger: Ledger, batch: Batch, attempt: int, key: str
    ) -> None:
        """Download a terminal batch's files once and record its results in the ledger (``key``: the batch's)."""
        from batchkit.results.results import from_results, result_batches, write_results
        from batchkit.split.batch_inputs import answer_check, batch_fingerprints

        if batch.status == BatchStatus.FAILED and not queue_full(batch.errors):
            raise AirflowFailException(failure(batch.id, batch.errors))
        name = f"{self.batch_file['index']:05d}/attempt-{attempt}.jsonl"
        with staging.scratch() as scratch:
            downloaded = []
            if batch.status == BatchStatus.FAILED:  # refused for the queue limit: nothing ran, every line is unanswered
                source = from_results(self._refused_requests(vendor, batch, scratch / f"{batch.id}-input.jsonl"))
            else:
                downloaded = vendor.download(batch, scratch, name, self.batch_file["path"], key)

                def source(per_line: bool) -> Any:
                    return result_batches([path for _, path in downloaded], batch.id, per_line)

            counts = batch.request_counts
            expected = counts.total if batch.status == BatchStatus.COMPLETED and counts else None
            local = scratch / f"{batch.id}.parquet"
            if not hasattr(self, "_prints"):  # the file's requests: from the rows the split staged, when it says where
                f = self.batch_file
                self._prints = batch_fingerprints(f["path"], f["manifest"], f["index"], f["sha256"])
                self._check = answer_check(f["path"])
            written = write_results(source, self._prints, attempt, local, expected, self._check)
            url = ledger.record_results(batch.id, local)
            for kind, path in downloaded:
                staging.publish(path, kind, name)
        self.log.info("recorded %d result(s) of batch %s (%s) in %s", written, batch.id, batch.status, url)

    @staticmethod
    def _latest(ledger: Ledger, chain: list[Batch]) -> tuple[Latest, int]:
        """Each request's best answer over the attempts (``batchkit.results.answers``), and how many results came from
        resubmissions."""
        names = ["custom_id", "status", "http_status", "error_code", "final", "recorded_at", "attempts", "batch_id"]
        table = ledger.read_results([b.id for b in chain], names)
        best: dict[str, tuple[tuple[int, float, int], tuple[str, int | None, str | None, str]]] = {}
        columns = [table.column(name).to_pylist() for name in names]
        for custom_id, status, http_status, code, final, recorded_at, attempts, batch_id in zip(*columns):
            rank = best_first(status, final, recorded_at, attempts)
            if custom_id not in best or rank < best[custom_id][0]:
                best[custom_id] = (rank, (status, http_status, code, batch_id))
        resubmitted = sum(1 for attempts in columns[6] if attempts > 1)
        return {custom_id: result for custom_id, (_, result) in best.items()}, resubmitted

    def _refused_requests(self, vendor: BatchVendor, batch: Batch, path: Path) -> list:
        import orjson

        from batchkit.results.result_line import Result

        vendor.download_input(batch, path)
        message = batch.errors.data[0].message
        with path.open("rb") as lines:
            return [
                Result(
                    orjson.loads(raw)["custom_id"],
                    batch.id,
                    ResultStatus.ERROR.value,
                    error_code=QUEUE_FULL,
                    error_message=message,
                )
                for raw in lines
                if raw.strip()
            ]

    def _resubmit(
        self,
        run: TaskRun,
        vendor: BatchVendor,
        staging: RunStaging,
        ledger: Ledger,
        chain: list[Batch],
        retry: set[str],
        waits: int,
        method: str,
    ) -> tuple[Batch, Claim]:
        """Send the ``retry`` lines as the next attempt; its batch and claim."""
        from batchkit.split.batch_inputs import request_lines
        from openai_batch.claims import submit_once
        from openai_batch.vendors.base import CreateRefused

        attempt = len(chain) + 1
        key = self.attempt_key(run, attempt)
        with staging.scratch() as scratch:
            retry_file = scratch / f"retry-{self.batch_file['index']:05d}-{attempt}.jsonl"
            with retry_file.open("wb") as out:
                out.writelines(request_lines(self.batch_file["path"], retry))
            staged = staging.publish(retry_file, "inputs", retry_file.name)
        first = chain[0]
        metadata = {**(first.metadata or {}), METADATA_KEY: key, "attempt": str(attempt)}
        try:
            batch, claim = submit_once(
                vendor,
                ledger,
                key,
                run.actor,
                self.batch_file["sha256"],
                staged,
                self.log,
                len(retry),
                endpoint=first.endpoint,
                completion_window="24h",
                metadata=metadata,
            )
        except CreateRefused as exc:
            wait_then_retry(self, waits, method, {"waited": True}, f"resubmission refused: {exc.message}")
        self.log.warning(
            "resubmitting %d line(s) as batch %s (attempt %d of %s)", len(retry), batch.id, attempt, self.max_attempts
        )
        return batch, claim
