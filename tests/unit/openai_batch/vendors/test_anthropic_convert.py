"""Anthropic <-> the pipeline's shapes, checked against both SDKs' own types: request lines the split writes become
valid ``messages.batches.create`` requests, Anthropic result lines become output lines the core parses as OpenAI's."""

from pathlib import Path

import orjson
import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse
from openai.types import Batch
from openai.types.chat import ChatCompletion

from batchkit.errors import InputError, ResultsUnreadable
from batchkit.results.results import result_batches
from batchkit.sentiment import SENTIMENT_SCHEMA
from batchkit.split.requests import RequestShape
from openai_batch.vendors.anthropic_convert import (
    Converter,
    batch_view,
    hashed,
    our_id,
    output_line,
    safe_id,
)

KEY = "0123abcd" + "e" * 24
SDK_KEYS = MessageCreateParamsNonStreaming.__required_keys__ | MessageCreateParamsNonStreaming.__optional_keys__


def line(endpoint="/v1/chat/completions", system="Be terse.", options=None, schema=None, custom_id="r-1"):
    shape = RequestShape.build(endpoint, "claude-sonnet-4-5", system, options or {}, schema)
    return orjson.loads(shape.line(custom_id, "Great product"))


def test_a_chat_line_becomes_message_params_the_sdk_declares():
    converter = Converter(default_max_tokens=300)
    request = converter.request(line(options={"temperature": 0, "stop": "END", "user": "u1"}), KEY)
    params = request["params"]
    assert set(params) <= SDK_KEYS and MessageCreateParamsNonStreaming.__required_keys__ <= set(params)
    assert params == {
        "model": "claude-sonnet-4-5",
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Great product"}],
        "max_tokens": 300,  # Anthropic requires it: the connection's default
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"},
    }
    assert converter.dropped == {"temperature"}  # the SDK's API version refuses sampling parameters
    assert Converter(sampling="send").params(line(options={"temperature": 0}))["temperature"] == 0


def test_token_limits_and_the_responses_endpoint_map_onto_max_tokens():
    assert Converter().params(line(options={"max_completion_tokens": 20}))["max_tokens"] == 20
    params = Converter().params(line("/v1/responses", options={"max_output_tokens": 30}))
    assert params["system"] == "Be terse." and params["max_tokens"] == 30
    assert params["messages"] == [{"role": "user", "content": "Great product"}]


def test_an_output_schema_asks_for_structured_outputs_or_a_forced_tool_by_model():
    params = Converter().params(line(schema=SENTIMENT_SCHEMA))
    assert params["output_config"]["format"]["type"] == "json_schema"
    assert "response_format" not in params and set(params) <= SDK_KEYS
    old = line(schema=SENTIMENT_SCHEMA)
    old["body"]["model"] = "claude-3-5-haiku-20241022"  # no structured outputs: a forced tool call instead
    params = Converter().params(old)
    assert params["tool_choice"] == {"type": "tool", "name": "answer"}
    assert params["tools"][0]["input_schema"] == SENTIMENT_SCHEMA
    assert "output_config" in Converter(structured="native").params(old)


@pytest.mark.parametrize(
    ("options", "endpoint", "message"),
    [
        ({"logprobs": True}, "/v1/chat/completions", "no Anthropic equivalent"),
        ({"colour": "blue"}, "/v1/chat/completions", "not known for Anthropic"),
        ({"n": 2}, "/v1/chat/completions", "n must be 1"),
        ({}, "/v1/embeddings", "no /v1/embeddings batches"),
    ],
)
def test_what_anthropic_cannot_take_fails_before_any_work(options, endpoint, message):
    with pytest.raises(InputError, match=message):
        Converter().params(line(endpoint, system=None if "embeddings" in endpoint else "s", options=options))


def test_custom_ids_are_tagged_with_the_key_and_mapped_back():
    assert safe_id(KEY, "review_42") == "0123abcd_review_42"
    long = "https://shop.example/reviews/42?lang=fr"  # breaks ^[a-zA-Z0-9_-]{1,64}$
    safe = safe_id(KEY, long)
    assert safe == f"0123abcd-{hashed(long)}" and len(safe) <= 64
    assert our_id("0123abcd_review_42", KEY, dict) == "review_42"
    assert our_id(safe, KEY, lambda: {hashed(long): long}) == long
    with pytest.raises(ResultsUnreadable, match="adopted by the lost-create lookup by mistake"):
        our_id("ffffffff_review_42", KEY, dict)


def result(custom_id, result):
    """A results line as the API sends it, checked by the SDK's own model."""
    raw = {"custom_id": custom_id, "result": result}
    MessageBatchIndividualResponse.model_validate(raw)
    return raw


def message(content, stop="end_turn"):
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 3,
            "cache_read_input_tokens": 20,
        },
    }


def test_result_lines_become_output_lines_the_core_parses(tmp_path: Path):
    lines = [
        result("0123abcd_a", {"type": "succeeded", "message": message([{"type": "text", "text": "positive"}])}),
        result(
            "0123abcd_b",
            {
                "type": "succeeded",
                "message": message([{"type": "tool_use", "id": "t", "name": "answer", "input": {"label": "neutral"}}], "tool_use"),
            },
        ),
        result("0123abcd_c", {"type": "succeeded", "message": message([{"type": "text", "text": "cut"}], "max_tokens")}),
        result(
            "0123abcd_d",
            {"type": "errored", "error": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}},
        ),
        result("0123abcd_e", {"type": "errored", "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}}),
        result("0123abcd_f", {"type": "canceled"}),
        result("0123abcd_g", {"type": "expired"}),
    ]
    written = {"outputs": [], "errors": []}
    for raw in lines:
        kind, out = output_line(raw, our_id(raw["custom_id"], KEY, dict), 1_700_000_000)
        if kind == "outputs":
            ChatCompletion.model_validate(out["response"]["body"])  # the OpenAI SDK's own type
        written[kind].append(orjson.dumps(out))
    paths = []
    for kind, records in written.items():
        paths.append(tmp_path / f"{kind}.jsonl")
        paths[-1].write_bytes(b"\n".join(records) + b"\n")
    per_line = {r["custom_id"]: r for b in result_batches(paths, "b1", per_line=True) for r in b.to_pylist()}
    rows = {r["custom_id"]: r for b in result_batches(paths, "b1") for r in b.to_pylist()}  # Arrow's fast path
    assert rows == per_line  # both parsers read the converted lines alike
    assert rows["a"]["status"] == "ok" and rows["a"]["response_text"] == "positive"
    assert (rows["a"]["prompt_tokens"], rows["a"]["completion_tokens"], rows["a"]["total_tokens"]) == (33, 5, 38)
    assert (rows["a"]["cached_tokens"], rows["a"]["cache_write_tokens"]) == (20, 3)  # priced as such
    assert orjson.loads(rows["b"]["response_text"]) == {"label": "neutral"}  # the forced tool's input
    assert rows["c"]["finish_reason"] == "length"  # an output schema's check calls this output_truncated
    assert (rows["d"]["error_code"], rows["d"]["http_status"]) == ("overloaded_error", 503)  # retried
    assert (rows["e"]["error_code"], rows["e"]["http_status"]) == ("invalid_request_error", 400)  # final
    assert rows["f"]["error_code"] == "batch_cancelled" and rows["g"]["error_code"] == "batch_expired"


def test_a_message_batch_is_seen_as_an_openai_batch():
    raw = {
        "id": "msgbatch_1",
        "type": "message_batch",
        "processing_status": "in_progress",
        "request_counts": {"processing": 5, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
        "created_at": "2026-12-06T10:00:00Z",
        "expires_at": "2026-12-07T10:00:00Z",
        "ended_at": None,
        "cancel_initiated_at": None,
        "archived_at": None,
        "results_url": None,
    }
    MessageBatch.model_validate(raw)
    running = Batch.model_validate(batch_view(raw))
    assert (running.status, running.request_counts.total, running.created_at) == ("in_progress", 5, 1796551200)
    ended = {**raw, "processing_status": "ended", "ended_at": "2026-12-06T11:00:00Z", "results_url": "https://r"}
    ended["request_counts"] = {"processing": 0, "succeeded": 3, "errored": 1, "canceled": 0, "expired": 1}
    view = Batch.model_validate(batch_view(ended))
    assert (view.status, view.request_counts.completed, view.request_counts.failed) == ("expired", 3, 2)
    assert view.output_file_id == "msgbatch_1/results" and view.expired_at == 1796554800
    cancelled = {**ended, "cancel_initiated_at": "2026-12-06T10:30:00Z"}
    assert batch_view(cancelled)["status"] == "cancelled"
    assert batch_view({**raw, "processing_status": "canceling"})["status"] == "cancelling"
    assert batch_view({**ended, "request_counts": {**ended["request_counts"], "expired": 0}})["status"] == "completed"
