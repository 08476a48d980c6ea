"""The emulator's Message Batches routes over real HTTP with the official anthropic SDK: its types are the contract.
Lifecycle, paging, results in no order, cancel, delete, structured answers, auth, and the faults (expiry, errored
lines, invalid answers, queue full, refused requests)."""

import collections
import json
import time

import anthropic
import httpx
import jsonschema
import pytest
from anthropic.types import Message, TextBlock, ToolUseBlock
from anthropic.types.messages import (
    MessageBatch,
    MessageBatchCanceledResult,
    MessageBatchErroredResult,
    MessageBatchExpiredResult,
    MessageBatchIndividualResponse,
    MessageBatchSucceededResult,
)

from batchkit.sentiment import SENTIMENT_SCHEMA

KEY = "sk-ant-emulator-0123456789"
MODEL = "claude-sonnet-4-5"


def client_for(emu, api_key: str = KEY, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=emu.url, api_key=api_key, **kw)


def request(custom_id: str, text: str = "hi", **params) -> dict:
    body = {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": text}], **params}
    return {"custom_id": custom_id, "params": body}


def ended(client: anthropic.Anthropic, batch_id: str, timeout: float = 60) -> MessageBatch:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} still {batch.processing_status} after {timeout}s")


def results(client: anthropic.Anthropic, batch_id: str) -> list[MessageBatchIndividualResponse]:
    return list(client.messages.batches.results(batch_id))


def test_lifecycle_paging_and_results_as_sdk_types(emulator):
    client = client_for(emulator("--seconds-per-request", "0.005", env={"BATCHKIT_EMULATOR_API_KEY": KEY}))
    system = [{"type": "text", "text": "You rate reviews. " * 20, "cache_control": {"type": "ephemeral"}}]
    requests = [request(f"r-{i}", f"hello {i} 🎉", system=system) for i in range(60)]
    batch = client.messages.batches.create(requests=requests)
    assert isinstance(batch, MessageBatch) and batch.id.startswith("msgbatch_") and batch.type == "message_batch"
    assert batch.processing_status == "in_progress" and batch.results_url is None and batch.ended_at is None
    assert batch.request_counts.processing == 60 and batch.request_counts.succeeded == 0  # tallied at the end
    assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600
    done = ended(client, batch.id)
    counts = done.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (0, 60, 0, 0, 0)
    assert done.ended_at >= done.created_at and done.results_url.endswith(f"/v1/messages/batches/{batch.id}/results")
    lines = results(client, batch.id)
    assert [line.custom_id for line in lines] != [r["custom_id"] for r in requests]  # in no guaranteed order
    assert sorted(line.custom_id for line in lines) == sorted(r["custom_id"] for r in requests)
    first = next(line for line in lines if line.custom_id == "r-7")
    assert isinstance(first, MessageBatchIndividualResponse) and isinstance(first.result, MessageBatchSucceededResult)
    message = first.result.message
    assert isinstance(message, Message) and message.model == MODEL and message.stop_reason == "end_turn"
    assert isinstance(message.content[0], TextBlock) and message.content[0].text == "echo: hello 7 🎉"
    assert message.usage.cache_read_input_tokens > 0 and message.usage.input_tokens > 0  # the cached system prompt
    assert message.usage.cache_creation_input_tokens == 0 and message.usage.service_tier == "batch"

    later = [client.messages.batches.create(requests=[request("a")]) for _ in range(2)]
    page = client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == [later[1].id, later[0].id] and page.has_more
    assert page.first_id == later[1].id and page.last_id == later[0].id
    assert [b.id for b in page.get_next_page().data] == [batch.id] and not page.get_next_page().has_more
    assert [b.id for b in client.messages.batches.list(before_id=batch.id, limit=1).data] == [later[0].id]
    assert [b.id for b in client.messages.batches.list(limit=1)] == [later[1].id, later[0].id, batch.id]

    assert client.messages.batches.delete(batch.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_cancel_keeps_what_ran_and_cancels_the_rest(emulator):
    client = client_for(emulator("--seconds-per-request", "0.02"))
    batch = client.messages.batches.create(requests=[request(f"r{i}") for i in range(200)])
    with pytest.raises(anthropic.BadRequestError, match="still in progress"):
        client.messages.batches.delete(batch.id)
    time.sleep(0.5)
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status in ("canceling", "ended") and canceling.cancel_initiated_at is not None
    done = ended(client, batch.id)
    counts = done.request_counts
    assert counts.canceled > 0 and counts.succeeded > 0 and counts.succeeded + counts.canceled == 200
    kinds = collections.Counter(type(line.result) for line in results(client, batch.id))
    assert kinds == {MessageBatchSucceededResult: counts.succeeded, MessageBatchCanceledResult: counts.canceled}
    with pytest.raises(anthropic.BadRequestError, match="already ended"):
        client.messages.batches.cancel(batch.id)


def test_expiry_and_errored_lines(emulator):
    client = client_for(emulator("--seconds-per-request", "0.02", "--completion-window-seconds", "2"))
    done = ended(client, client.messages.batches.create(requests=[request(f"r{i}") for i in range(300)]).id)
    assert done.request_counts.expired > 0 and done.request_counts.succeeded > 0 and done.ended_at >= done.expires_at
    expired = [line for line in results(client, done.id) if isinstance(line.result, MessageBatchExpiredResult)]
    assert len(expired) == done.request_counts.expired

    client = client_for(emulator("--line-failure-rate", "0.3", "--seed", "3"))
    done = ended(client, client.messages.batches.create(requests=[request(f"r{i}") for i in range(200)]).id)
    errored = [line.result for line in results(client, done.id) if isinstance(line.result, MessageBatchErroredResult)]
    assert 30 < len(errored) < 90 and done.request_counts.errored == len(errored)
    assert done.request_counts.succeeded + len(errored) == 200
    assert {e.error.error.type for e in errored} == {"overloaded_error", "api_error"}
    assert all(e.error.type == "error" and e.error.error.message for e in errored)


def test_unknown_model_is_an_errored_line(emulator):
    client = client_for(emulator())
    done = ended(client, client.messages.batches.create(requests=[request("a"), request("b", model="gpt-4o")]).id)
    by_id = {line.custom_id: line.result for line in results(client, done.id)}
    assert isinstance(by_id["a"], MessageBatchSucceededResult) and by_id["b"].error.error.type == "not_found_error"


def test_structured_output_and_forced_tool_calls(emulator):
    client = client_for(emulator("--invalid-output-rate", "0.3", "--seed", "7"))
    fmt = {"output_config": {"format": {"type": "json_schema", "schema": SENTIMENT_SCHEMA}}}
    tool = {
        "tools": [{"name": "rate", "description": "Rate a review", "input_schema": SENTIMENT_SCHEMA}],
        "tool_choice": {"type": "tool", "name": "rate"},
    }
    requests = [request(f"f{i}", f"review {i}", **fmt) for i in range(150)]
    requests += [request(f"t{i}", f"review {i}", **tool) for i in range(150)]
    done = ended(client, client.messages.batches.create(requests=requests).id)
    assert done.request_counts.succeeded == 300
    kinds = collections.Counter()
    for line in results(client, done.id):
        message = line.result.message
        block = message.content[0]
        if message.stop_reason == "refusal":
            kinds["refusal"] += 1
            continue
        if isinstance(block, ToolUseBlock):
            assert line.custom_id.startswith("t") and block.name == "rate"
        try:
            answer = block.input if isinstance(block, ToolUseBlock) else json.loads(block.text)
            jsonschema.validate(answer, SENTIMENT_SCHEMA)
            assert message.stop_reason in ("tool_use", "end_turn")
            kinds["valid"] += 1
        except jsonschema.ValidationError:
            kinds["max_tokens" if message.stop_reason == "max_tokens" else "mismatch"] += 1
        except json.JSONDecodeError:
            assert message.stop_reason == "max_tokens"
            kinds["truncated"] += 1
    assert 60 <= 300 - kinds["valid"] <= 150 and {"refusal", "mismatch", "truncated"} <= set(kinds), kinds


def test_requests_refused_at_creation(emulator):
    emu = emulator("--anthropic-max-requests", "3", env={"BATCHKIT_EMULATOR_API_KEY": KEY})
    client = client_for(emu, max_retries=0)
    cases = {
        "custom_id": [request("has space")],
        "used by another": [request("a"), request("a")],
        "max_tokens": [{"custom_id": "a", "params": {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}}],
        "at most 3": [request(f"r{i}") for i in range(4)],
    }
    for needle, requests in cases.items():
        with pytest.raises(anthropic.BadRequestError, match=needle) as raised:
            client.messages.batches.create(requests=requests)
        assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == "invalid_request_error"
    assert not client.messages.batches.list().data  # nothing was created
    with pytest.raises(anthropic.AuthenticationError) as raised:
        client_for(emu, "wrong").messages.batches.list()
    assert raised.value.body["error"]["type"] == "authentication_error"
    batches = f"{emu.url}/v1/messages/batches"
    assert httpx.get(batches, headers={"anthropic-version": "2023-06-01"}).status_code == 401
    missing = httpx.get(batches, headers={"x-api-key": KEY})
    assert missing.status_code == 400 and missing.json()["error"]["message"] == "anthropic-version: header is required"
    assert httpx.get(f"{emu.base_url}/batches", headers={"authorization": f"Bearer {KEY}"}).json()["data"] == []


def test_queue_full_is_a_429(emulator):
    client = client_for(emulator("--validation-failure-rate", "1"), max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.batches.create(requests=[request("a")])
    assert raised.value.status_code == 429 and raised.value.body["error"]["type"] == "rate_limit_error"
    assert not client.messages.batches.list().data

    client = client_for(emulator("--enqueued-token-limit", "2000", "--stuck-rate", "1"), max_retries=0)
    first = client.messages.batches.create(requests=[request(f"r{i}", "x" * 200) for i in range(20)])
    with pytest.raises(anthropic.RateLimitError, match="processing queue"):
        client.messages.batches.create(requests=[request(f"r{i}", "x" * 200) for i in range(20)])
    client.messages.batches.cancel(first.id)
    ended(client, first.id)
    assert client.messages.batches.create(requests=[request(f"r{i}", "x" * 200) for i in range(20)])
