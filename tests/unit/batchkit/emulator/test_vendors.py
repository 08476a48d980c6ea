"""What differs per vendor (batchkit.emulator.vendors), Anthropic's echo (messages) and error shapes in-process."""

import json

import jsonschema
import pytest
from fastapi.testclient import TestClient

from batchkit.emulator import messages, vendors
from batchkit.emulator.app import create_app
from batchkit.emulator.config import EmulatorConfig
from batchkit.emulator.errors import APIError
from batchkit.sentiment import SENTIMENT_SCHEMA

ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def test_paths_limits_and_urls_per_vendor():
    assert [vendors.of_path(p) for p in ("/v1/batches", "/openai/v1/files", "/v1/messages/batches/x", "/health")] == [
        "openai",
        "azure",
        "anthropic",
        None,
    ]
    config = EmulatorConfig()
    assert vendors.OPENAI_API.limits(config) is config and config.max_requests_per_batch == 50_000
    azure = vendors.AZURE_API.limits(config)
    assert azure.max_requests_per_batch == 100_000 and azure.accepts_model("any-deployment-name")
    anthropic = vendors.ANTHROPIC_API.limits(config)
    assert anthropic.max_requests_per_batch == 100_000 and anthropic.max_batch_input_bytes == 256_000_000
    assert anthropic.accepts_model("claude-opus-4-1") and not anthropic.accepts_model("gpt-4o")
    assert not config.accepts_model("claude-opus-4-1")  # OpenAI's list is unchanged
    assert vendors.AZURE_API.urls("/chat/completions") == {"/chat/completions", "/v1/chat/completions"}
    assert vendors.AZURE_API.canonical("/embeddings") == "/v1/embeddings"
    assert (
        vendors.OPENAI_API.urls("/v1/responses") == {"/v1/responses"}
        and "/responses" not in vendors.OPENAI_API.endpoints
    )


def test_auth_per_vendor():
    assert vendors.auth_error("openai", {}, None) is None  # OpenAI without a key: as before
    assert vendors.auth_error("azure", {}, None).status == 401  # Azure and Anthropic always need one
    assert vendors.auth_error("azure", {"api-key": "x"}, None) is None
    assert vendors.auth_error("azure", {"authorization": "Bearer k"}, "k") is None
    assert vendors.auth_error("azure", {"api-key": "x"}, "k").status == 401
    assert vendors.auth_error("anthropic", ANTHROPIC_HEADERS, "k") is None
    assert vendors.auth_error("anthropic", {"x-api-key": "k"}, "k").status == 400  # no anthropic-version
    body = json.loads(vendors.error_response("anthropic", APIError(429, "slow down")).body)
    assert body["type"] == "error" and body["error"] == {"type": "rate_limit_error", "message": "slow down"}


def test_anthropic_errors_are_in_anthropics_shape(tmp_path):
    with TestClient(create_app(EmulatorConfig(data_dir=tmp_path))) as api:
        for response, status, kind in (
            (api.get("/v1/messages/batches/msgbatch_x", headers=ANTHROPIC_HEADERS), 404, "not_found_error"),
            (api.get("/v1/messages/batches?limit=0", headers=ANTHROPIC_HEADERS), 400, "invalid_request_error"),
            (api.put("/v1/messages/batches", headers=ANTHROPIC_HEADERS), 405, "invalid_request_error"),
            (api.post("/v1/messages/batches", content=b"[", headers=ANTHROPIC_HEADERS), 400, "invalid_request_error"),
            (api.get("/v1/messages/batches"), 401, "authentication_error"),
        ):
            assert response.status_code == status and response.json()["error"]["type"] == kind, response.text
        assert api.get("/v1/batches/batch_x").json()["error"]["type"] == "invalid_request_error"  # OpenAI's envelope
        answer = api.post(
            "/v1/messages",
            headers=ANTHROPIC_HEADERS,
            json={"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "a" * 100}]},
        ).json()
        assert answer["stop_reason"] == "max_tokens" and len(answer["content"][0]["text"]) == 20  # cut at 5 tokens


def body(**params) -> dict:
    return {
        "model": "claude-x",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "great product"}],
        **params,
    }


@pytest.mark.parametrize("invalid", [None, "mismatch", "truncated", "refusal"])
def test_forced_tool_call_follows_the_schema_unless_broken(invalid):
    tools = {"tools": [{"name": "rate", "input_schema": SENTIMENT_SCHEMA}], "tool_choice": {"type": "any"}}
    message = messages.echo("/v1/messages", body(**tools), "b/1", 0, 0, invalid).body
    block = message["content"][0]
    if invalid == "refusal":
        assert message["stop_reason"] == "refusal" and block["type"] == "text"
        return
    assert block["type"] == "tool_use" and block["name"] == "rate"
    assert message["stop_reason"] == {None: "tool_use", "mismatch": "tool_use", "truncated": "max_tokens"}[invalid]
    if invalid is None:
        jsonschema.validate(block["input"], SENTIMENT_SCHEMA)
    else:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(block["input"], SENTIMENT_SCHEMA)


def test_output_format_and_refused_requests():
    fmt = {"output_config": {"format": {"type": "json_schema", "schema": SENTIMENT_SCHEMA}}}
    message = messages.echo("/v1/messages", body(**fmt), "b/1", 0).body
    jsonschema.validate(json.loads(message["content"][0]["text"]), SENTIMENT_SCHEMA)
    bad = messages.echo("/v1/messages", body(tool_choice={"type": "tool", "name": "nope"}), "b/1", 0)
    assert bad.status_code == 400 and bad.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(APIError, match="custom_id"):
        messages.check_request(0, {"custom_id": "x" * 65, "params": body()}, set())
    with pytest.raises(APIError, match="max_tokens"):
        messages.check_request(0, {"custom_id": "a", "params": body(max_tokens=0)}, set())
