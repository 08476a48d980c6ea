"""Wait for a batch without holding a worker slot: a deferrable sensor polling on the triggerer."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from openai_batch.links import OpenAIBatchLink
from openai_batch.statuses import DEADLINE_PASSED, GONE, TERMINAL, BatchStatus, failure, progress, queue_full

if TYPE_CHECKING:
    from openai.types import Batch

    from openai_batch.vendors.base import BatchVendor

HANDED_ON = (BatchStatus.EXPIRED, BatchStatus.CANCELLED)  # partial results exist: the collect step decides what to do


class OpenAIBatchSensor(BaseSensorOperator):
    """Wait until a batch is terminal.

    Succeeds on ``completed``; on ``expired`` or ``cancelled`` succeeds too and hands the partial results to
    the collect step (its XCom says which); fails on ``failed`` with the API's validation errors. When the
    deadline passes (deferrable: the completion window plus ``grace`` after the batch was created; polling:
    ``timeout`` after the sensor started), the remote batch is cancelled and the task fails with
    ``AirflowSensorTimeout``.

    :param batch_id: the batch to wait for (templated).
    :param conn_id: the batch vendor's connection (``openai``, Azure OpenAI or ``anthropic``: see ``vendors``).
    :param deferrable: poll on the triggerer (default) instead of a worker.
    :param poll_interval: seconds between status checks.
    :param completion_window: the batch's completion window.
    :param grace: extra time after the window before giving up.
    :param cancel_on_kill: cancel the batch when a user kills the task (mark failed/success, clear).
    :param batch_file: the split's descriptor of the batch's file (templated), for ``map_index_template``, and
        with ``staging_root`` (templated), ``storage_conn_id`` and ``pipeline_id``: a batch the vendor no longer has
        (deleted once collect recorded it) is read from the partition's ledger instead (``retention``).
    """

    template_fields = ("batch_id", "batch_file", "conn_id", "staging_root")
    operator_extra_links = (OpenAIBatchLink(),)

    def __init__(
        self,
        *,
        batch_id: str,
        batch_file: dict[str, Any] | None = None,
        conn_id: str = "openai_default",
        deferrable: bool = True,
        poll_interval: float = 60,
        completion_window: timedelta = timedelta(hours=24),
        grace: timedelta = timedelta(hours=1),
        cancel_on_kill: bool = True,
        staging_root: str | None = None,
        storage_conn_id: str | None = None,
        pipeline_id: str = "",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", (completion_window + grace).total_seconds())
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.batch_id, self.conn_id, self.deferrable, self.batch_file = batch_id, conn_id, deferrable, batch_file
        self.staging_root, self.storage_conn_id, self.pipeline_id = staging_root, storage_conn_id, pipeline_id
        self.poll_interval, self.cancel_on_kill = poll_interval, cancel_on_kill

    @property
    def hook(self) -> BatchVendor:
        """The connection's batch vendor adapter (built when run, keeping DAG parsing fast)."""
        if getattr(self, "_vendor", None) is None:
            from openai_batch.vendors import for_connection

            self._vendor = for_connection(self.conn_id)
        return self._vendor

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                self._cancel("the sensor timed out")
                raise
        batch = self._batch(context)
        if batch.status in TERMINAL:
            return self._finish(batch.status, batch.request_counts.model_dump() if batch.request_counts else None)
        deadline = self.deadline(batch.created_at)
        self.log.info(
            "batch %s is %s; deferring to the triggerer (polling every %ss, deadline in %s)",
            self.batch_id,
            batch.status,
            self.poll_interval,
            timedelta(seconds=round(max(0.0, deadline - time.time()))),
        )
        from openai_batch.triggers import OpenAIBatchStatusTrigger, deferral_timeout

        self.defer(
            trigger=OpenAIBatchStatusTrigger(
                batch_id=self.batch_id,
                conn_id=self.conn_id,
                poll_interval=self.poll_interval,
                deadline=deadline,
                cancel_on_kill=self.cancel_on_kill,
            ),
            method_name="execute_complete",
            timeout=deferral_timeout(deadline),
        )

    def deadline(self, created_at: float) -> float:
        """When to give up, as an epoch time: ``timeout`` after the batch was created, so a retry, a clear or a
        triggerer restart never moves it later (a vendor whose batches never expire: its ``max_runtime`` when that
        is later)."""
        limits = self.hook.limits
        if not limits.expires and limits.max_runtime is not None:
            return created_at + max(self.timeout, limits.max_runtime.total_seconds())
        return created_at + self.timeout

    def poke(self, context: Any) -> PokeReturnValue | bool:
        batch = self._batch(context)
        counts = batch.request_counts.model_dump() if batch.request_counts else None
        self.log.info("batch %s %s", self.batch_id, progress(batch.status, counts, batch.in_progress_at, time.time()))
        if batch.status not in TERMINAL:
            return False
        return PokeReturnValue(True, self._finish(batch.status, counts))

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        status = event.get("status")
        if status == DEADLINE_PASSED:
            self._cancel("the sensor's deadline passed")
            raise AirflowSensorTimeout(f"batch {self.batch_id} did not finish before the deadline; cancelled it")
        if status in TERMINAL:
            return self._finish(status, event.get("request_counts"))
        if status == GONE:  # deleted at the vendor (by collect, once recorded): the ledger tells, or this fails
            batch = self._batch(context)
            return self._finish(batch.status, batch.request_counts.model_dump() if batch.request_counts else None)
        raise AirflowException(f"unexpected event for batch {self.batch_id}: {event}")

    def _batch(self, context: Any) -> Batch:
        """The batch; one the vendor no longer has, as the partition's ledger recorded it (in a pipeline)."""
        from openai_batch.vendors.base import Gone

        try:
            return self.hook.get_batch(self.batch_id)
        except Gone as exc:
            if not self.staging_root or not self.batch_file:
                raise AirflowFailException(f"batch {self.batch_id}: {exc}") from None
        from openai_batch.context import TaskRun
        from openai_batch.retention import batch_or_recorded
        from openai_batch.staging import RunStaging, connect_storage

        connect_storage(self.batch_file["path"], self.storage_conn_id)
        ledger = RunStaging(self.staging_root, TaskRun.of(context, self.pipeline_id), self.storage_conn_id).ledger()
        return batch_or_recorded(self.hook, ledger, self.batch_id, self.batch_file["path"])

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        if next_method == "__fail__" and (next_kwargs or {}).get("error") == "Trigger timeout":
            self._cancel("the deferral timed out")
            raise AirflowSensorTimeout(f"batch {self.batch_id} did not finish before the deadline; cancelled it")
        return super().resume_execution(next_method, next_kwargs, context)

    def _finish(self, status: str, counts: dict[str, int] | None) -> dict[str, Any]:
        if status == BatchStatus.FAILED:
            errors = self.hook.get_batch(self.batch_id).errors
            if queue_full(errors):
                self.log.warning(
                    "batch %s was refused for the enqueued-token limit; the collect step waits and resubmits it",
                    self.batch_id,
                )
                return {"batch_id": self.batch_id, "status": status, "request_counts": counts, "queue_full": True}
            raise AirflowFailException(failure(self.batch_id, errors))
        if status in HANDED_ON:
            self.log.warning(
                "batch %s ended %s (%s); the collect step keeps its partial results and resubmits what can be retried",
                self.batch_id,
                status,
                counts,
            )
        else:
            self.log.info("batch %s completed: %s", self.batch_id, counts)
        return {"batch_id": self.batch_id, "status": status, "request_counts": counts}

    def _cancel(self, reason: str) -> None:
        try:
            self.hook.cancel_batch(self.batch_id)
            self.log.warning("cancelled batch %s: %s", self.batch_id, reason)
        except Exception as exc:  # cancelling is best effort; the timeout error is what matters
            self.log.warning("could not cancel batch %s (%s): %s", self.batch_id, reason, exc)
