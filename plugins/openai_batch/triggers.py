"""The trigger behind the deferrable sensor: async polling of one batch on the triggerer."""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
from airflow.triggers.base import BaseTrigger, TriggerEvent

from openai_batch.hooks import TRANSIENT, OpenAIBatchHook
from openai_batch.statuses import TERMINAL

POLL_TIMEOUT_SECONDS = 30.0  # one status request; the SDK's default 600 s would stall a deadline by minutes
POLL_RETRIES = 1  # inside one poll; the loop itself backs off and tries again
JITTER = 0.2  # +-20% on every sleep, and a random first delay, so restarted triggers do not poll in lockstep
CLIENT_REFRESH_SECONDS = 900.0  # a shared client is rebuilt this often, so a rotated key is picked up

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future]] = (
    weakref.WeakKeyDictionary()
)  # per event loop: a client must not outlive the loop it was made in


async def shared_client(conn_id: str) -> Any:
    """One ``AsyncOpenAI`` client per connection and event loop: the triggerer runs all its triggers in one loop,
    so 1,000 waits share one connection pool instead of each building a client (and its TLS context)."""
    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, {})
    made = clients.get(conn_id)
    if made is None or (made.done() and time.monotonic() - made.result()[0] > CLIENT_REFRESH_SECONDS):
        made = clients[conn_id] = loop.create_future()  # triggers starting together wait for this one
        try:
            client = await OpenAIBatchHook(conn_id=conn_id).aget_conn()
        except BaseException as exc:
            del clients[conn_id]
            made.set_exception(exc)
            raise
        made.set_result((time.monotonic(), client.with_options(timeout=POLL_TIMEOUT_SECONDS, max_retries=POLL_RETRIES)))
    return (await made)[1]


class OpenAIBatchStatusTrigger(BaseTrigger):
    """Poll a batch until it reaches a terminal status or ``deadline`` (a UNIX time) passes.

    State is only serialisable ids and numbers, so a restarted triggerer resumes where it left off.
    Transient API errors back off exponentially (up to ``max_poll_interval``) instead of failing the task.
    Clients are shared per connection (``shared_client``), requests time out fast, sleeps are jittered.

    :param batch_id: the batch to watch.
    :param conn_id: the ``openai`` connection.
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
        ends = None if self.deadline is None else time.monotonic() + (self.deadline - time.time())
        interval, last_counts = self.poll_interval, None
        client = await shared_client(self.conn_id)
        await asyncio.sleep(random.uniform(0, min(self.poll_interval, 10.0)) * JITTER)
        while True:
            try:
                batch = await _status(client, self.batch_id)
                interval = self.poll_interval
            except TRANSIENT as exc:
                interval = min(interval * 2, self.max_poll_interval)
                self.log.warning(
                    "polling %s failed (%s); next try in %.0fs", self.batch_id, type(exc).__name__, interval
                )
            else:
                status, counts = batch["status"], batch.get("request_counts")
                progress = (status, *(counts.get(k) for k in ("completed", "failed", "total"))) if counts else None
                if progress != last_counts and progress:
                    self.log.info("batch %s %s: %s/%s/%s completed/failed/total", self.batch_id, *progress)
                    last_counts = progress
                if status in TERMINAL:
                    yield TriggerEvent(_event(status, self.batch_id, f"batch {status}", counts))
                    return
            if ends is not None and time.monotonic() >= ends:
                yield TriggerEvent(_event("timeout", self.batch_id, "the sensor's deadline passed", None))
                return
            remaining = float("inf") if ends is None else max(0.0, ends - time.monotonic())
            await asyncio.sleep(min(interval * random.uniform(1 - JITTER, 1 + JITTER), remaining))

    async def on_kill(self) -> None:
        """A person acted on the deferred task (mark failed/success, clear): stop spending on the batch.

        Airflow also calls this when the trigger moves to another triggerer (HA handover) or its triggerer
        stops; the task instance is then still deferred and the batch must go on, so the state is checked first.
        """
        if not self.cancel_on_kill:
            return
        state = await self._task_state()
        if state in ("deferred", None):
            self.log.info(
                "not cancelling batch %s: the task is %s (the trigger moved or its triggerer stopped)",
                self.batch_id,
                state or "of unknown state",
            )
            return
        try:
            await (await shared_client(self.conn_id)).batches.cancel(self.batch_id)
            self.log.info("cancelled batch %s because the task was killed", self.batch_id)
        except openai.APIError as exc:
            self.log.warning("could not cancel batch %s: %s", self.batch_id, exc)

    async def _task_state(self) -> str | None:
        """The deferred task instance's current state, from Airflow's execution API (None if unknown)."""
        from asgiref.sync import sync_to_async

        ti = self.task_instance
        if ti is None:
            return None
        try:
            from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

            states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
                dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index
            )
            name = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
            state = states[ti.run_id][name]
        except Exception as exc:  # unknown: keep the paid work going rather than cancel it by mistake
            self.log.warning("cannot read the state of %s: %s", ti.task_id, exc)
            return None
        return str(state) if state is not None else "none"


async def _status(client: Any, batch_id: str) -> dict[str, Any]:
    """The batch as plain JSON: a poll needs its status and counts only, and skipping the SDK's model building
    is most of a poll's CPU when a triggerer follows 1,000 batches."""
    response = await client.batches.with_raw_response.retrieve(batch_id)
    return orjson.loads(response.content)


def _event(status: str, batch_id: str, message: str, counts: dict[str, Any] | None) -> dict[str, Any]:
    return {"status": status, "batch_id": batch_id, "message": message, "request_counts": counts}
