"""How the trigger polls (``openai_batch.polling``): one aiohttp session per connection and event loop with the
SDK's base URL, query and headers, at most POLL_CONCURRENCY polls in flight, rebuilt every CLIENT_REFRESH_SECONDS
and closed with the last trigger using it; transport errors are waited out, an error answer fails the trigger.
Against real emulator processes and real sockets."""

import asyncio
import gc
import json
import time
from types import SimpleNamespace

import aiohttp
import httpx2
import pytest
from openai import AsyncOpenAI

from openai_batch import polling, triggers
from openai_batch.polling import POLL_CONCURRENCY, Poller, PollFailed, env_proxy
from openai_batch.triggers import OpenAIBatchStatusTrigger
from tests.emulator_client import client_for, submit_batch

KEY = "sk-test-never-logged-1234"


@pytest.fixture(autouse=True)
def no_settling(monkeypatch):
    monkeypatch.setattr(triggers, "SETTLE_SECONDS", 0.0)


@pytest.fixture
def polled(monkeypatch) -> SimpleNamespace:
    """The poller each poll went through and what the failed ones raised (the polls themselves are real)."""
    seen, status = SimpleNamespace(pollers=[], raised=set()), Poller.status

    async def spy(poller: Poller, batch_id: str):
        seen.pollers.append(poller)
        try:
            return await status(poller, batch_id)
        except Exception as exc:
            seen.raised.add(type(exc).__name__)
            raise

    monkeypatch.setattr(Poller, "status", spy)
    return seen


def set_connection(monkeypatch, conn_id: str, host: str, key: str = "unused") -> None:
    value = json.dumps({"conn_type": "openai", "password": key, "host": host})
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)


def keyed_batch(emu) -> str:
    """A batch on an emulator that wants ``KEY``."""
    client = client_for(emu, api_key=KEY)
    file_id = client.files.create(file=("in.jsonl", b'{"custom_id": "a"}\n'), purpose="batch").id
    return client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h").id


async def first(trigger: OpenAIBatchStatusTrigger, after: float = 0) -> dict:
    await asyncio.sleep(after)
    async for event in trigger.run():
        return event.payload


def follow(*waits: OpenAIBatchStatusTrigger, alongside=None) -> list[dict]:
    """The first events of triggers run together in one event loop, as on the triggerer (``alongside``: a
    coroutine function run in the same loop with them)."""

    async def run():
        events = await asyncio.wait_for(asyncio.gather(*map(first, waits), *([alongside()] if alongside else [])), 60)
        assert not polling._pollers.get(asyncio.get_running_loop())  # the last trigger to end closed the clients
        return events[: len(waits)]

    return asyncio.run(run())


def test_the_triggers_of_a_connection_share_one_session_closed_with_the_last_of_them(conn, tmp_path, polled, caplog):
    emu = conn("--seconds-per-request", "0.05")
    batches = [submit_batch(emu, tmp_path) for _ in range(3)]
    events = follow(*(OpenAIBatchStatusTrigger(b, "openai_test", poll_interval=0.1) for b in batches))
    assert [e["status"] for e in events] == ["completed"] * 3
    (poller,) = {id(p): p for p in polled.pollers}.values()
    assert isinstance(poller.http, aiohttp.ClientSession) and poller.http.closed
    gc.collect()
    assert "Unclosed" not in caplog.text


def test_triggers_poll_on_across_client_rebuilds(conn, tmp_path, monkeypatch, polled, caplog):
    """The shared client is rebuilt every CLIENT_REFRESH_SECONDS and the one replaced is closed RETIRE_SECONDS
    later: a trigger that started before the rebuild polls on the new one, not on a closed one. A rebuild that
    fails (the connection cannot be read for a moment) leaves the triggers polling on the client they have."""
    monkeypatch.setattr(polling, "CLIENT_REFRESH_SECONDS", 0.3)
    monkeypatch.setattr(polling, "RETIRE_SECONDS", 0.2)
    emu = conn("--seconds-per-request", "1")
    one, second = submit_batch(emu, tmp_path), submit_batch(emu, tmp_path)

    async def later_one_and_the_connection_unreadable_for_a_while():
        later = asyncio.ensure_future(first(OpenAIBatchStatusTrigger(second, "openai_test", poll_interval=0.1), 0.5))
        await asyncio.sleep(1.5)
        monkeypatch.delenv("AIRFLOW_CONN_OPENAI_TEST")
        assert (await later)["status"] == "completed"

    waits = OpenAIBatchStatusTrigger(one, "openai_test", poll_interval=0.1)
    (event,) = follow(waits, alongside=later_one_and_the_connection_unreadable_for_a_while)
    assert event["status"] == "completed"
    clients = {id(p): p for p in polled.pollers}.values()
    assert len(clients) > 2 and all(p.http.closed for p in clients)  # rebuilt while polling; all closed at the end
    assert "could not rebuild the client of openai_test (AirflowNotFoundException)" in caplog.text


def test_a_static_key_polls_with_the_sdks_url_query_and_headers(emulator, tmp_path):
    """The emulator here refuses any request without the key: the aiohttp poll carries the SDK's auth header."""
    emu = emulator(env={"BATCHKIT_EMULATOR_API_KEY": KEY})
    batch_id = keyed_batch(emu)

    async def poll(key: str) -> dict:
        poller = Poller.of(AsyncOpenAI(api_key=key, base_url=emu.base_url, default_query={"api-version": "2024-10"}))
        try:
            assert poller.url == emu.base_url + "/" and poller.query == "?api-version=2024-10"
            assert poller.http.headers["user-agent"].startswith("AsyncOpenAI/Python")
            assert poller.gate._value == POLL_CONCURRENCY == 4 and poller.http.connector.limit == POLL_CONCURRENCY
            return await poller.status(batch_id)
        finally:
            await poller.close()

    assert asyncio.run(poll(KEY))["id"] == batch_id
    with pytest.raises(PollFailed, match="HTTP 401") as refused:  # an answer waiting will not mend: no retry
        asyncio.run(poll("sk-wrong-key-5678"))
    assert "sk-wrong" not in str(refused.value) + repr(refused.value)


def test_without_a_static_key_polls_go_through_the_sdk(emulator, tmp_path):
    class PerRequest(httpx2.Auth):  # as a credential provider: each request signed on its way out
        def auth_flow(self, request):
            request.headers["Authorization"] = f"Bearer {KEY}"
            yield request

    class SignedPerRequest(AsyncOpenAI):
        @property
        def auth_headers(self) -> dict[str, str]:
            return {}

        @property
        def custom_auth(self) -> httpx2.Auth:
            return PerRequest()

    emu = emulator(env={"BATCHKIT_EMULATOR_API_KEY": KEY})
    batch_id = keyed_batch(emu)

    async def poll() -> tuple[Poller, dict]:
        poller = Poller.of(SignedPerRequest(api_key="unused", base_url=emu.base_url))
        try:
            return poller, await poller.status(batch_id)
        finally:
            await poller.close()

    poller, batch = asyncio.run(poll())
    assert poller.http is None and batch["id"] == batch_id


class Misbehaving(asyncio.Protocol):
    """A server that takes each request and then hangs up, never answers, or answers garbage."""

    def __init__(self, answer: bytes | None, connections: list) -> None:
        self.answer, self.connections = answer, connections

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.connections.append(transport)

    def data_received(self, data: bytes) -> None:
        if self.answer == b"":
            self.transport.close()
        elif self.answer is not None:
            self.transport.write(self.answer)


def test_transport_errors_are_waited_out_until_the_deadline(monkeypatch, polled):
    monkeypatch.setattr(polling, "POLL_TIMEOUT_SECONDS", 0.3)
    answers = {
        "hangs_up": b"",
        "never_answers": None,
        "answers_garbage": b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    }

    async def run():
        loop, servers, connections = asyncio.get_running_loop(), [], []
        for name, answer in answers.items():
            servers.append(await loop.create_server(lambda a=answer: Misbehaving(a, connections), "127.0.0.1", 0))
            set_connection(monkeypatch, name, f"http://127.0.0.1:{servers[-1].sockets[0].getsockname()[1]}/v1")
        set_connection(monkeypatch, "refused", "http://127.0.0.1:9/v1")
        deadline = time.time() + 2
        waits = [
            OpenAIBatchStatusTrigger("batch_1", c, poll_interval=0.05, deadline=deadline, max_poll_interval=0.1)
            for c in [*answers, "refused"]
        ]
        events = await asyncio.gather(*(anext(w.run()) for w in waits))
        for closing in (*servers, *connections):
            closing.close()
        return [e.payload["status"] for e in events]

    assert asyncio.run(run()) == ["timeout"] * 4
    assert polled.raised == {"ServerDisconnectedError", "TimeoutError", "ClientResponseError", "ClientConnectorError"}


def test_polls_go_through_the_proxy_the_environment_names(emulator, tmp_path, monkeypatch):
    """A base URL only the proxy can reach (the emulator takes absolute-form requests, as a forward proxy)."""
    emu = emulator()
    batch_id = submit_batch(emu, tmp_path)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", emu.base_url.removesuffix("/v1"))
    set_connection(monkeypatch, "openai_test", "http://api.example.invalid/v1")
    (event,) = follow(OpenAIBatchStatusTrigger(batch_id, "openai_test", poll_interval=0.1))
    assert event["status"] == "completed"

    origin = emu.base_url.removesuffix("/v1")
    assert env_proxy("http://api.example.invalid/v1/") == origin
    assert env_proxy("https://api.openai.com/v1/") is None
    monkeypatch.setenv("ALL_PROXY", "proxy.internal:3128")
    assert env_proxy("https://api.openai.com/v1/") == "http://proxy.internal:3128"
    monkeypatch.setenv("NO_PROXY", "example.invalid,api.openai.com")
    assert env_proxy("http://api.example.invalid/v1/") is None and env_proxy("https://api.openai.com/v1/") is None
