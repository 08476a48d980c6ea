"""Structured outputs from the echo backend: answers validate against the requested JSON schema, the same prompt
gives the same answer, a bad request is a 400 line, and the injected bad answers look as OpenAI's do."""

import json

import jsonschema
import pytest

from batchkit.emulator import backends
from batchkit.emulator.structured import INVALID_KINDS, REFUSAL
from batchkit.sentiment import SENTIMENT_SCHEMA

SENTIMENT = SENTIMENT_SCHEMA
NESTED = {
    "type": "object",
    "properties": {
        "author": {
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 2, "maxLength": 5}, "age": {"type": "integer"}},
            "required": ["name", "age"],
        },
        "published": {"type": "boolean"},
        "nothing": {"type": "null"},
        "code": {"const": "X-1"},
    },
    "required": ["author", "published", "nothing", "code"],
}
ARRAYS = {
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": {"type": "string"}},
        "scores": {
            "type": "array",
            "items": {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 13},
            "minItems": 4,
            "maxItems": 6,
        },
        "pairs": {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "maxItems": 1}},
        "temperature": {"type": "number", "exclusiveMinimum": -5.5, "maximum": -5},
    },
    "required": ["tags", "scores", "pairs", "temperature"],
}
NULLABLE = {
    "type": "object",
    "properties": {"note": {"type": ["string", "null"]}, "count": {"type": ["null", "integer"], "minimum": 1}},
    "required": ["note", "count"],
}
DEFS = {
    "type": "object",
    "$defs": {
        "step": {
            "type": "object",
            "properties": {"explanation": {"type": "string"}, "output": {"type": "string"}},
            "required": ["explanation", "output"],
        },
        "tree": {
            "type": "object",
            "properties": {
                "value": {"type": "integer"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/tree"}},
            },
            "required": ["value", "children"],
        },
    },
    "definitions": {"answer": {"type": "string", "enum": ["yes", "no"]}},
    "properties": {
        "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
        "final": {"$ref": "#/definitions/answer"},
        "tree": {"$ref": "#/$defs/tree"},
    },
    "required": ["steps", "final", "tree"],
}
ANY_OF = {
    "type": "object",
    "properties": {
        "item": {
            "anyOf": [
                {"type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]},
                {"type": "string"},
            ]
        },
        "id": {"oneOf": [{"type": "integer", "minimum": 1000}, {"type": "string"}]},
        "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]},
    },
    "required": ["item", "id", "next"],
}
SCHEMAS = {
    "sentiment": SENTIMENT,
    "nested": NESTED,
    "arrays": ARRAYS,
    "nullable": NULLABLE,
    "defs": DEFS,
    "any_of": ANY_OF,
}
CHAT, RESPONSES = "/v1/chat/completions", "/v1/responses"


def request(url: str, schema: dict, prompt: str) -> dict:
    if url == CHAT:
        return {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Classify."}, {"role": "user", "content": prompt}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "out", "schema": schema, "strict": True},
            },
        }
    return {
        "model": "gpt-4o-mini",
        "input": prompt,
        "text": {"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}},
    }


def answer_text(url: str, body: dict) -> str | None:
    if url == CHAT:
        return body["choices"][0]["message"]["content"]
    part = body["output"][0]["content"][0]
    return part.get("text")


def run(url: str, schema: dict, prompt: str, key: str = "b/1", invalid: str | None = None) -> backends.LineResult:
    return backends.echo(url, request(url, schema, prompt), key, 1_700_000_000, 8, invalid)


@pytest.mark.parametrize("url", [CHAT, RESPONSES])
@pytest.mark.parametrize("name", SCHEMAS)
def test_answers_validate_and_repeat_for_the_same_prompt(url, name):
    schema = SCHEMAS[name]
    answers = set()
    for i in range(25):
        prompt = f"review {i}: the battery lasts {i} hours, très bien"
        result = run(url, schema, prompt)
        assert result.status_code == 200, result.body
        text = answer_text(url, result.body)
        assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)  # compact
        jsonschema.validate(json.loads(text), schema)
        assert answer_text(url, run(url, schema, prompt, key="other/9").body) == text  # same prompt, same answer
        answers.add(text)
    assert len(answers) > 1  # different prompts, different answers


def test_answer_shapes_and_usage():
    chat = run(CHAT, SENTIMENT, "great phone").body
    message = chat["choices"][0]["message"]
    assert message["refusal"] is None and chat["choices"][0]["finish_reason"] == "stop"
    assert chat["usage"]["completion_tokens"] == -(-len(message["content"]) // 4)
    response = run(RESPONSES, SENTIMENT, "great phone").body
    assert response["status"] == "completed" and response["incomplete_details"] is None
    assert response["output"][0]["content"][0]["type"] == "output_text"
    assert response["usage"]["output_tokens"] == -(-len(answer_text(RESPONSES, response)) // 4)


def test_sentiment_covers_every_label():
    labels = {json.loads(answer_text(CHAT, run(CHAT, SENTIMENT, f"text {i}").body))["label"] for i in range(40)}
    assert labels == {"positive", "negative", "neutral"}


def test_unstructured_requests_are_unchanged():
    for fmt in (None, {"type": "text"}, {"type": "json_object"}):
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]} | (
            {"response_format": fmt} if fmt else {}
        )
        assert backends.echo(CHAT, body, "k", 1, 8, "refusal").body["choices"][0]["message"]["content"] == "echo: hi"
    body = {"model": "m", "input": "hi", "text": {"format": {"type": "text"}}}
    assert answer_text(RESPONSES, backends.echo(RESPONSES, body, "k", 1, 8, "truncated").body) == "echo: hi"


@pytest.mark.parametrize(
    ("url", "body_patch", "param"),
    [
        (CHAT, {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
        (
            CHAT,
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": []}}},
            "response_format",
        ),
        (
            CHAT,
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string"}}}},
            "response_format",
        ),
        (CHAT, {"response_format": {"type": "yaml"}}, "response_format"),
        (CHAT, {"response_format": "json"}, "response_format"),
        (
            CHAT,
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "x",
                        "schema": {"type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}}},
                    },
                }
            },
            "response_format",
        ),
        (RESPONSES, {"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format"),
        (
            RESPONSES,
            {"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "array"}}}},
            "text.format",
        ),
        (RESPONSES, {"text": {"format": {"type": "grammar"}}}, "text.format"),
    ],
)
def test_a_bad_structured_request_is_a_400_line(url, body_patch, param):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "input": "hi"} | body_patch
    result = backends.echo(url, body, "k", 1, 8)
    assert result.status_code == 400
    assert result.body["error"]["type"] == "invalid_request_error" and result.body["error"]["param"] == param


def test_invalid_chat_answers():
    text = answer_text(CHAT, run(CHAT, SENTIMENT, "ok").body)
    truncated = run(CHAT, SENTIMENT, "ok", invalid="truncated").body["choices"][0]
    assert truncated["finish_reason"] == "length" and truncated["message"]["content"] == text[: len(text) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated["message"]["content"])
    refused = run(CHAT, SENTIMENT, "ok", invalid="refusal").body["choices"][0]
    assert refused["message"]["content"] is None and refused["message"]["refusal"] == REFUSAL
    assert refused["finish_reason"] == "stop"
    for schema in SCHEMAS.values():
        mismatch = run(CHAT, schema, "ok", invalid="mismatch")
        assert mismatch.status_code == 200
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(json.loads(answer_text(CHAT, mismatch.body)), schema)


def test_invalid_responses_answers():
    truncated = run(RESPONSES, SENTIMENT, "ok", invalid="truncated").body
    assert truncated["status"] == "incomplete" and truncated["incomplete_details"] == {"reason": "max_output_tokens"}
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer_text(RESPONSES, truncated))
    refused = run(RESPONSES, SENTIMENT, "ok", invalid="refusal").body
    assert refused["status"] == "completed"
    assert refused["output"][0]["content"] == [{"type": "refusal", "refusal": REFUSAL}]
    mismatch = run(RESPONSES, SENTIMENT, "ok", invalid="mismatch").body
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(answer_text(RESPONSES, mismatch)), SENTIMENT)
    assert set(INVALID_KINDS) == {"truncated", "refusal", "mismatch"}


@pytest.mark.parametrize(
    "prop",
    [
        {"type": "array", "items": {"type": "string"}, "minItems": 10**12},  # would never finish
        {"type": "string", "minLength": 10**9},  # a gigabyte answer
        {"type": "array", "minItems": 2000, "items": {"type": "array", "minItems": 2000, "items": {"type": "integer"}}},
    ],
)
def test_a_schema_asking_for_a_huge_answer_is_a_400_line_not_unbounded_work(prop):
    schema = {"type": "object", "properties": {"a": prop}, "required": ["a"]}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]} | {
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    }
    result = backends.echo(CHAT, body, "k", 1, 8)
    assert result.status_code == 400 and "longer than a reply can be" in result.body["error"]["message"]
