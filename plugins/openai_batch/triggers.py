"""The trigger behind the deferrable sensor: async polling of one batch on the triggerer."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from openai_batch.polling import POLL_ERRORS, Pollers, PollGone, polling
from openai_batch.statuses import DEADLINE_PASSED, GONE, TERMINAL, progress

JITTER = 0.2  # +-20% on every sleep, and a random first delay, so restarted triggers do not poll in lockstep
STATE_READ_SECONDS = 8.0  # one read of the task's state in on_kill (three at most, then "unknown": keep the batch)
SETTLE_SECONDS = 20.0  # no event sooner after the deferral: see OpenAIBatchStatusTrigger.run
_DECISIONS: set[asyncio.Future] = set()  # on_kill decisions running on this triggerer (see on_kill)


async def _settle(until: float) -> None:
    """Sleep until the monotonic time ``until`` (no sooner event: see ``OpenAIBatchStatusTrigger.run``)."""
    await asyncio.sleep(max(0.0, until - time.monotonic()))


def deferral_timeout(deadline: float) -> timedelta:
    """The deferral's own timeout for a trigger with ``deadline`` (epoch seconds): a backstop set after it, so
    the trigger's deadline fires first."""
    return timedelta(seconds=max(60.0, deadline - time.time()) + 300)


class OpenAIBatchStatusTrigger(BaseTrigger):
    """Poll a batch until it reaches a terminal status or ``deadline`` (a UNIX time) passes.

    State is only serialisable ids and numbers, so a restarted triggerer resumes where it left off.
    Transient API errors back off exponentially (up to ``max_poll_interval``) instead of failing the task; a batch
    the vendor no longer has (404: deleted once another task recorded it) fires ``gone``.
    Clients are shared per connection (``polling.polling``), requests time out fast, sleeps are jittered.

    :param batch_id: the batch to watch.
    :param conn_id: the batch vendor's connection; its adapter (``vendors``) is chosen when the trigger runs.
    :param poll_interval: seconds between polls while the API answers normally.
    :param deadline: UNIX time after which the trigger fires ``timeout``; measured on a monotonic clock.
    :param cancel_on_kill: cancel the batch when a user marks the task failed/success or clears it.
    """

    def __init__(
        self,
        batch_id: str,
        conn_id: str,
        poll_interval: float = 60,
        deadline: float | None = None,
        cancel_on_kill: bool = True,
        max_poll_interval: float = 600,
    ) -> None:
        super().__init__()
        self.batch_id, self.conn_id = batch_id, conn_id
        self.poll_interval, self.max_poll_interval = poll_interval, max_poll_interval
        self.deadline, self.cancel_on_kill = deadline, cancel_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "openai_batch.triggers.OpenAIBatchStatusTrigger",
            {
                "batch_id": self.batch_id,
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "cancel_on_kill": self.cancel_on_kill,
                "max_poll_interval": self.max_poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the batch ends or the deadline passes. The first event waits until ``SETTLE_SECONDS``
        after the trigger started: the scheduler must have drained the executor's "success" of the process that
        deferred before the task resumes, or it fails the resumed try ("state mismatch", apache/airflow#72716,
        #71580; #67287 covers only SCHEDULED). A batch that ends within seconds costs those seconds, never a try.
        """
        settled = time.monotonic() + SETTLE_SECONDS
        ends = None if self.deadline is None else time.monotonic() + (self.deadline - time.time())
        async with polling(self.conn_id) as pollers:  # shared with the loop's other triggers of the connection
            await pollers.get()  # a connection that cannot be read fails the trigger before any sleep
            event = await self._follow(pollers, ends)
        await _settle(settled)
        yield TriggerEvent(event)

    async def _follow(self, pollers: Pollers, ends: float | None) -> dict[str, Any]:
        """Poll until the batch ends or ``ends`` (monotonic) passes: the event's payload."""
        interval, last_seen = self.poll_interval, None
        await asyncio.sleep(random.uniform(0, min(self.poll_interval, 10.0)) * JITTER)
        while True:
            try:  # the current poller at each poll: it is rebuilt every CLIENT_REFRESH_SECONDS
                batch = await (await pollers.get()).status(self.batch_id)
                interval = self.poll_interval
            except PollGone:  # another task recorded it and had it deleted; the task reads the ledger (or fails)
                return _event(GONE, self.batch_id, "the vendor has no such batch (any more)", None)
            except POLL_ERRORS as exc:
                interval = min(interval * 2, self.max_poll_interval)
                self.log.warning(
                    "polling %s failed (%s); next try in %.0fs", self.batch_id, type(exc).__name__, interval
                )
            else:
                status, counts = batch["status"], batch.get("request_counts")
                seen = (status, *(counts.get(k) for k in ("completed", "failed", "total"))) if counts else None
                if seen and seen != last_seen:  # each change: counts, percentage and an ETA from the rate so far
                    started = batch.get("in_progress_at")
                    self.log.info("batch %s %s", self.batch_id, progress(status, counts, started, time.time()))
                    last_seen = seen
                if status in TERMINAL:
                    return _event(status, self.batch_id, f"batch {status}", counts)
            if ends is not None and time.monotonic() >= ends:
                return _event(DEADLINE_PASSED, self.batch_id, "the sensor's deadline passed", None)
            remaining = float("inf") if ends is None else max(0.0, ends - time.monotonic())
            await asyncio.sleep(min(interval * random.uniform(1 - JITTER, 1 + JITTER), remaining))

    async def on_kill(self) -> None:
        """A person acted on the deferred task (mark failed/success, clear): stop spending on the batch.

        Airflow also calls this when the trigger moves to another triggerer (HA handover) or its triggerer
        stops; the task instance is then still deferred and the batch must go on, so the state is checked first.
        Airflow 3.3 cancels a trigger again on each loop while its on_kill runs: the check and the cancel are
        shielded from that, so a slow state read still ends in a decision.
        """
        if not self.cancel_on_kill:
            return
        decision = asyncio.ensure_future(self._cancel_if_asked())
        _DECISIONS.add(decision)  # owned here: it outlives an on_kill that Airflow cancels
        decision.add_done_callback(self._decided)
        await asyncio.shield(decision)

    def _decided(self, decision: asyncio.Future) -> None:
        _DECISIONS.discard(decision)
        if not decision.cancelled() and decision.exception() is not None:
            self.log.warning("could not decide on batch %s: %r", self.batch_id, decision.exception())

    async def _cancel_if_asked(self) -> None:
        state = await self._task_state()
        if state in ("deferred", None):
            self.log.info(
                "not cancelling batch %s: the task is %s (the trigger moved or its triggerer stopped)",
                self.batch_id,
                state or "of unknown state",
            )
            return
        try:
            async with polling(self.conn_id) as pollers:
                poller = await pollers.get()
                await poller.vendor.acancel(poller.sdk, self.batch_id)
            self.log.info("cancelled batch %s because the task is %s", self.batch_id, state)
        except Exception as exc:  # any vendor's SDK or transport error: the cancel is best effort, and logged
            self.log.warning("could not cancel batch %s: %s: %s", self.batch_id, type(exc).__name__, exc)

    async def _task_state(self, attempts: int = 3) -> str | None:
        """The deferred task instance's current state, asked of Airflow's execution API through the triggerer's
        channel to its supervisor (None if unknown: the paid work then goes on rather than being cancelled by
        mistake). Each read is bounded and retried: under load the channel can stall or drop a request."""
        ti = self.task_instance
        if ti is None:
            return None
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import GetTaskStates

        ask = GetTaskStates(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index)
        name = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
        for attempt in range(1, attempts + 1):
            try:
                answer = await asyncio.wait_for(task_runner.SUPERVISOR_COMMS.asend(ask), STATE_READ_SECONDS)
                state = answer.task_states[ti.run_id][name]
                return str(state) if state is not None else "none"
            except asyncio.CancelledError:  # e.g. Airflow's channel dropped its pending requests
                if asyncio.current_task().cancelling():  # this decision itself is being stopped
                    raise
                reason: Any = "the request was cancelled"
            except Exception as exc:
                reason = exc
            self.log.warning("cannot read the state of %s (try %d of %d): %s", ti.task_id, attempt, attempts, reason)
            await asyncio.sleep(1)
        return None


def _event(status: str, batch_id: str, message: str, counts: dict[str, Any] | None) -> dict[str, Any]:
    return {"status": status, "batch_id": batch_id, "message": message, "request_counts": counts}
