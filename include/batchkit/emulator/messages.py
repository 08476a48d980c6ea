"""Anthropic's Messages API for the echo backend: a Message for one request's ``params`` (text; structured output
through ``output_config.format``; or a forced tool call whose input follows the tool's schema), and the checks
Message Batches makes of each request when a batch is created."""

import re
from typing import Any

from . import structured
from .errors import APIError, anthropic_body
from .lines import ECHO_CHARS, LineResult
from .lines import digest as _digest
from .lines import text_of as _text_of
from .lines import tokens as _tokens

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def check_request(index: int, request: Any, seen: set[str]) -> None:
    """Refuse (400) a batch request that Message Batches refuses at creation: a ``custom_id`` off the pattern or
    used twice, ``params`` without ``model``, ``messages`` or a positive ``max_tokens``, or a streaming one."""
    where = f"requests.{index}"
    if not isinstance(request, dict):
        raise APIError(400, f"{where}: Input should be an object")
    custom_id = request.get("custom_id")
    if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
        raise APIError(
            400, f"{where}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$' (got {custom_id!r:.80})"
        )
    if custom_id in seen:
        raise APIError(400, f"{where}.custom_id: the custom_id '{custom_id}' is used by another request in this batch")
    seen.add(custom_id)
    params = request.get("params")
    if not isinstance(params, dict):
        raise APIError(400, f"{where}.params: Field required")
    if not isinstance(params.get("model"), str) or not params["model"]:
        raise APIError(400, f"{where}.params.model: Field required")
    max_tokens = params.get("max_tokens")
    if type(max_tokens) is not int or max_tokens < 1:
        raise APIError(400, f"{where}.params.max_tokens: Field required (an integer of at least 1 in a batch)")
    if not isinstance(params.get("messages"), list) or not params["messages"]:
        raise APIError(400, f"{where}.params.messages: Field required (at least one message)")
    if params.get("stream"):
        raise APIError(400, f"{where}.params.stream: streaming is not supported in a message batch")


def model_not_found(model: str) -> LineResult:
    """A request for a model that does not exist, as Anthropic answers it."""
    return LineResult(404, anthropic_body(404, f"model: {model}"))


def echo(
    url: str,
    body: dict[str, Any],
    key: str,
    created: int,
    embedding_dimensions: int = 0,
    invalid_output: str | None = None,
    tier: str = "batch",
) -> LineResult:
    """A deterministic Message for ``body`` (a Messages request), or a 400 line in Anthropic's error shape; the
    signature is ``backends.echo``'s so the processor calls either. ``invalid_output`` makes a structured answer
    bad (``structured.INVALID_KINDS``)."""
    try:
        return LineResult(200, _message(body, key, invalid_output, tier))
    except (structured.SchemaError, APIError) as exc:
        return LineResult(400, anthropic_body(400, str(exc)))
    except (AttributeError, TypeError, ValueError, KeyError, OverflowError) as exc:
        return LineResult(400, anthropic_body(400, f"Invalid request body: {type(exc).__name__}"))


def _message(body: dict[str, Any], key: str, invalid: str | None, tier: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.")
    model, messages, max_tokens = body.get("model"), body.get("messages"), body.get("max_tokens")
    if not isinstance(model, str) or not model or type(max_tokens) is not int or max_tokens < 1:
        raise APIError(400, "model and max_tokens (an integer of at least 1) are required")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise APIError(400, "messages: at least one message object is required")
    system, cached = _system(body.get("system"))
    user = next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    prompt = "\n".join([system, *(_text_of(m.get("content")) for m in messages)])
    tool = _forced_tool(body)
    if tool:
        content, stop, said = _tool_call(key, *tool, user, invalid)
    else:
        content, stop, said = _text(body, user, invalid, max_tokens)
    p, c = _tokens(prompt) + 4 * len(messages), _tokens(said)
    return {
        "id": f"msg_{_digest(key)}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": p - cached,
            "output_tokens": c,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "server_tool_use": None,
            "service_tier": tier,
        },
    }


def _system(system: Any) -> tuple[str, int]:
    """The system prompt's text, and its tokens in blocks marked ``cache_control`` (read from the cache here)."""
    if system is None or isinstance(system, str):
        return system or "", 0
    if not isinstance(system, list) or not all(isinstance(b, dict) for b in system):
        raise APIError(400, "system: a string or an array of text blocks")
    cached = sum(_tokens(b.get("text", "")) for b in system if b.get("cache_control"))
    return _text_of(system), cached


def _forced_tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The (name, input schema) of the tool ``tool_choice`` forces: ``{"type": "tool", "name"}``, or ``{"type":
    "any"}`` with one tool; None when the model may answer in text."""
    choice, tools = body.get("tool_choice"), body.get("tools") or []
    if not isinstance(choice, dict) or choice.get("type") not in ("tool", "any"):
        return None
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise APIError(400, "tools: an array of tool definitions")
    if choice["type"] == "any":
        if len(tools) != 1:
            return None  # the model picks among several: answered in text here
        tool = tools[0]
    else:
        tool = next((t for t in tools if t.get("name") == choice.get("name")), None)
        if tool is None:
            raise APIError(400, f"tool_choice.name: no tool named {choice.get('name')!r} in tools")
    schema = tool.get("input_schema")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise APIError(400, f"tools.{tool.get('name')}.input_schema: a JSON schema of type 'object'")
    return str(tool.get("name")), schema


def _tool_call(key: str, name: str, schema: dict, user: str, invalid: str | None) -> tuple[list, str, str]:
    """A tool_use block whose input follows ``schema`` (a bad one for ``invalid``: the model refused, or the input
    lacks a required property, stopped at ``max_tokens`` when truncated)."""
    value = structured.instance(schema, user, "tools.input_schema")
    if invalid == "refusal":
        return [{"type": "text", "text": structured.REFUSAL, "citations": None}], "refusal", structured.REFUSAL
    if invalid in ("mismatch", "truncated"):
        value = structured.mismatch(schema, value)
        value = value if isinstance(value, dict) else {"value": value}
    block = {"type": "tool_use", "id": f"toolu_{_digest(key, 'tool')}", "name": name, "input": value}
    return [block], "max_tokens" if invalid == "truncated" else "tool_use", str(value)


def _text(body: dict[str, Any], user: str, invalid: str | None, max_tokens: int) -> tuple[list, str, str]:
    """A text block: JSON following ``output_config.format`` (or the older ``output_format``), else an echo of
    the prompt; cut at ``max_tokens`` as the model would be."""
    schema = _output_schema(body)
    if schema is None:
        answer = structured.Answer(f"echo: {user[:ECHO_CHARS]}")
    else:
        answer = structured.answer(schema, user, invalid, "output_config.format")
    if answer.text is None:
        return [{"type": "text", "text": answer.refusal, "citations": None}], "refusal", answer.refusal or ""
    text, stop = answer.text, "max_tokens" if answer.truncated else "end_turn"
    if _tokens(text) > max_tokens:
        text, stop = text[: max_tokens * 4], "max_tokens"
    return [{"type": "text", "text": text, "citations": None}], stop, text


def _output_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    fmt = fmt if fmt is not None else body.get("output_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise APIError(400, "output_config.format: expected {'type': 'json_schema', 'schema': {...}}")
    return fmt["schema"]
