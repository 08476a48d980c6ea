"""The trigger behind the deferrable sensor: async polling of one batch on the triggerer."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import openai
import orjson
from airflow.triggers.base import BaseTrigger, TriggerEvent

from openai_batch.hooks import TRANSIENT, OpenAIBatchHook
from openai_batch.statuses import TERMINAL, progress

POLL_TIMEOUT_SECONDS = 30.0  # one status request; the SDK's default 600 s would stall a deadline by minutes
POLL_RETRIES = 1  # inside one poll; the loop itself backs off and tries again
JITTER = 0.2  # +-20% on every sleep, and a random first delay, so restarted triggers do not poll in lockstep
CLIENT_REFRESH_SECONDS = 900.0  # a shared client is rebuilt this often, so a rotated key is picked up
RETIRE_SECONDS = 60.0  # a replaced client is closed this much later (polls still on it finish), and a rebuild that
# failed is tried again this much later (the triggers poll on with the client they have)
POLL_CONCURRENCY = 4  # status polls in flight at once per connection and triggerer loop, i.e. HTTP connections:
# httpcore's pool work per request grows with the square of its connections (16: 0.5 core at 1,000 waits, 4: 0.3).
# At ~200 ms per poll against api.openai.com that is 20 polls/s: 1,000 waits at the default 60 s interval.
STATE_READ_SECONDS = 8.0  # one read of the task's state in on_kill (three at most, then "unknown": keep the batch)
SETTLE_SECONDS = 20.0  # no event sooner after the deferral: see OpenAIBatchStatusTrigger.run
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_DECISIONS: set[asyncio.Future] = set()  # on_kill decisions running on this triggerer (see on_kill)
log = logging.getLogger(__name__)


class PollRefused(Exception):
    """The API answered a poll with a status worth trying again later (rate limit, server error)."""


@dataclass
class Poller:
    """What the triggers of one connection share on one event loop: the SDK client (cancels), a plain HTTP client
    for the status polls, and a gate bounding the polls in flight.

    A poll is a GET of ``batches/{id}``: built by the SDK it cost a third of the poll's CPU at 1,000 waits
    (request options, header merging, retry wrapper), so polls use the SDK's own base URL and headers on a plain
    ``httpx`` client. Clients whose auth is not a static header (credential providers) poll through the SDK.
    """

    sdk: Any
    http: httpx.AsyncClient | None
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(POLL_CONCURRENCY))

    @classmethod
    def of(cls, client: Any) -> Poller:
        auth = client.auth_headers  # empty when a credential provider signs each request
        if client.custom_auth is not None or not auth:
            return cls(sdk=client, http=None)
        headers = {**{k: v for k, v in client.default_headers.items() if isinstance(v, str)}, **auth}
        limits = httpx.Limits(max_connections=POLL_CONCURRENCY, max_keepalive_connections=POLL_CONCURRENCY)
        http = httpx.AsyncClient(
            base_url=str(client.base_url), headers=headers, timeout=POLL_TIMEOUT_SECONDS, limits=limits
        )
        return cls(sdk=client, http=http)


_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future]] = (
    weakref.WeakKeyDictionary()
)  # per event loop: a client must not outlive the loop it was made in


async def shared_client(conn_id: str) -> Poller:
    """One ``Poller`` per connection and event loop: the triggerer runs all its triggers in one loop, so 1,000
    waits share one connection pool instead of each building a client (and its TLS context).

    Asked again at each poll: it is rebuilt every ``CLIENT_REFRESH_SECONDS`` and the one it replaces is closed
    ``RETIRE_SECONDS`` later. If the rebuild fails (e.g. the connection cannot be read for a moment), the triggers
    keep the one they have and the rebuild is tried again ``RETIRE_SECONDS`` later."""
    loop = asyncio.get_running_loop()
    pollers = _pollers.setdefault(loop, {})
    made = pollers.get(conn_id)
    if made is None or (made.done() and time.monotonic() - made.result()[0] > CLIENT_REFRESH_SECONDS):
        old = made.result()[1] if made is not None and made.done() else None
        made = pollers[conn_id] = loop.create_future()  # triggers starting together wait for this one
        try:
            client = await OpenAIBatchHook(conn_id=conn_id).aget_conn()
        except Exception as exc:
            if old is None:
                del pollers[conn_id]
                made.set_exception(exc)
                raise
            log.warning(
                "could not rebuild the client of %s (%s); polling on with the current one", conn_id, type(exc).__name__
            )
            made.set_result((time.monotonic() - CLIENT_REFRESH_SECONDS + RETIRE_SECONDS, old))
        except BaseException as exc:
            del pollers[conn_id]
            made.set_exception(exc)
            raise
        else:
            client = client.with_options(timeout=POLL_TIMEOUT_SECONDS, max_retries=POLL_RETRIES)
            made.set_result((time.monotonic(), Poller.of(client)))
            if old is not None and old.http is not None:  # polls still running on it get RETIRE_SECONDS to finish
                loop.call_later(RETIRE_SECONDS, lambda: loop.create_task(old.http.aclose()))
    return (await made)[1]


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
        """Poll until the batch ends or the deadline passes. The first event waits until ``SETTLE_SECONDS``
        after the trigger started: the scheduler must have drained the executor's "success" of the process that
        deferred before the task resumes, or it fails the resumed try ("state mismatch", apache/airflow#72716,
        #71580; #67287 covers only SCHEDULED). A batch that ends within seconds costs those seconds, never a try.
        """
        settled = time.monotonic() + SETTLE_SECONDS
        ends = None if self.deadline is None else time.monotonic() + (self.deadline - time.time())
        interval, last_seen = self.poll_interval, None
        await shared_client(self.conn_id)  # a connection that cannot be read fails the trigger before any sleep
        await asyncio.sleep(random.uniform(0, min(self.poll_interval, 10.0)) * JITTER)
        while True:
            try:  # the current client at each poll: it is rebuilt every CLIENT_REFRESH_SECONDS
                batch = await _status(await shared_client(self.conn_id), self.batch_id)
                interval = self.poll_interval
            except (*TRANSIENT, httpx.TransportError, PollRefused) as exc:
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
                    await _settle(settled)
                    yield TriggerEvent(_event(status, self.batch_id, f"batch {status}", counts))
                    return
            if ends is not None and time.monotonic() >= ends:
                await _settle(settled)
                yield TriggerEvent(_event("timeout", self.batch_id, "the sensor's deadline passed", None))
                return
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
            await (await shared_client(self.conn_id)).sdk.batches.cancel(self.batch_id)
            self.log.info("cancelled batch %s because the task is %s", self.batch_id, state)
        except (openai.APIError, httpx.HTTPError) as exc:
            self.log.warning("could not cancel batch %s: %s", self.batch_id, exc)

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


async def _status(poller: Poller, batch_id: str) -> dict[str, Any]:
    """The batch as plain JSON (a poll needs its status and counts only: no SDK model is built)."""
    async with poller.gate:
        if poller.http is None:
            return orjson.loads((await poller.sdk.batches.with_raw_response.retrieve(batch_id)).content)
        response = await poller.http.get(f"batches/{batch_id}")
    if response.status_code in RETRYABLE_STATUSES:
        raise PollRefused(f"HTTP {response.status_code}")
    response.raise_for_status()
    return orjson.loads(response.content)


def _event(status: str, batch_id: str, message: str, counts: dict[str, Any] | None) -> dict[str, Any]:
    return {"status": status, "batch_id": batch_id, "message": message, "request_counts": counts}
