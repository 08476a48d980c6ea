"""Anthropic Message Batches <-> the pipeline's shapes, as plain dicts (100,000 lines convert in seconds).

- a request line ``{"custom_id", "method", "url", "body"}`` (chat completions or responses) -> ``{custom_id,
  params}`` of ``POST /v1/messages/batches`` (``to_params``, ``safe_id``);
- a result line ``{custom_id, result: {type: succeeded|errored|canceled|expired}}`` -> an OpenAI batch output line
  (``output_line``), which the core parses as it parses OpenAI's;
- a message batch -> an OpenAI batch's JSON (``batch_view``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from batchkit.batch_api import Endpoint
from batchkit.errors import InputError, ResultsUnreadable
from batchkit.structured import schema_of
from openai_batch.vendors.anthropic_content import content_blocks

CUSTOM_ID = r"[a-zA-Z0-9_-]{1,64}"  # Anthropic's rule for a request's custom_id
TOOL_NAME = "answer"  # the forced tool that carries a structured answer on models without structured outputs
# Models without structured outputs (output_config.format): their answers come through a forced tool call instead
NO_STRUCTURED_OUTPUTS = re.compile(r"claude-(instant|2|3)|claude-(opus|sonnet)-4-(0|2025)")
SAMPLING = ("temperature", "top_p", "top_k")  # refused by API versions from 2026-10-21 on (the SDK's default)
NATIVE = ("top_k", "stop_sequences", "thinking", "service_tier", "inference_geo", "cache_control", "output_config")
UNSUPPORTED = frozenset(  # OpenAI body options with no Anthropic equivalent: refused before any work
    {
        *("frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs", "seed", "store"),
        *("tools", "tool_choice", "parallel_tool_calls", "functions", "function_call", "modalities", "audio"),
        *("prediction", "web_search_options", "stream", "stream_options", "reasoning_effort", "reasoning"),
        *("truncation", "include", "previous_response_id"),
    }
)
HTTP_STATUS = {  # an errored request's error type -> the HTTP status the attempt loop reads (retry or not)
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 503,  # Anthropic's own 529: sent again by a later attempt, as a 503
    "timeout_error": 504,
}


def safe_id(key: str, custom_id: str) -> str:
    """The request's custom_id as Anthropic takes it, tagged with the batch key: ``<key[:8]>_<custom_id>`` when
    that fits ``CUSTOM_ID``, else ``<key[:8]>-<sha256(custom_id)[:40]>`` (mapped back through the batch file)."""
    plain = f"{key[:8]}_{custom_id}"
    if re.fullmatch(CUSTOM_ID, plain):
        return plain
    return f"{key[:8]}-{hashed(custom_id)}"


def hashed(custom_id: str) -> str:
    return hashlib.sha256(custom_id.encode()).hexdigest()[:40]


def our_id(safe: str, key: str, by_hash: Callable[[], dict[str, str]]) -> str:
    """Our custom_id of a result's ``safe`` id; ``by_hash()``: hashed id -> ours, of the batch's requests.

    :raises ResultsUnreadable: the result belongs to another batch key (a batch adopted by mistake).
    """
    if safe[:8] != key[:8] or safe[8:9] not in ("_", "-"):
        raise ResultsUnreadable(
            f"result {safe!r} does not belong to batch key {key} (tag {key[:8]}): this batch was adopted by the "
            "lost-create lookup by mistake; delete its claim in the ledger (_ledger/batches/<key>.json) and clear"
        )
    if safe[8] == "_":
        return safe[9:]
    found = by_hash().get(safe[9:])
    if found is None:
        raise ResultsUnreadable(f"result {safe!r} names no request of the batch file")
    return found


@dataclass
class Converter:
    """Request lines -> Anthropic batch requests, with the connection's choices.

    :param default_max_tokens: ``max_tokens`` of requests that set none (Anthropic requires it).
    :param structured: ``auto`` (structured outputs where the model has them, else a forced tool), ``native``,
        ``tool``.
    :param sampling: ``drop`` (default: API versions from 2026-10-21 refuse temperature/top_p/top_k) or ``send``.
    """

    default_max_tokens: int = 1024
    structured: str = "auto"
    sampling: str = "drop"
    dropped: set[str] = field(default_factory=set)  # sampling options left out, for one log line
    _schemas: dict[bytes, dict[str, Any]] = field(default_factory=dict)

    def request(self, line: dict[str, Any], key: str) -> dict[str, Any]:
        return {"custom_id": safe_id(key, line["custom_id"]), "params": self.params(line)}

    def params(self, line: dict[str, Any]) -> dict[str, Any]:
        """The ``params`` of one request line.

        :raises InputError: an endpoint or body option Anthropic has no equivalent for.
        """
        url, body = line.get("url"), dict(line.get("body") or {})
        params: dict[str, Any] = {"model": body.pop("model")}
        if url == Endpoint.CHAT:
            system, messages = _chat_messages(body.pop("messages"))
        elif url == Endpoint.RESPONSES:
            system, messages = body.pop("instructions", None), _responses_input(body.pop("input"))
        else:
            raise InputError(f"Anthropic has no {url} batches: use {Endpoint.CHAT} or {Endpoint.RESPONSES}")
        if system:
            params["system"] = system
        params["messages"] = messages
        limit = [body.pop(k) for k in ("max_tokens", "max_completion_tokens", "max_output_tokens") if k in body]
        params["max_tokens"] = int(limit[0]) if limit else self.default_max_tokens
        schema = schema_of(body)
        body.pop("response_format", None), body.pop("text", None)
        if schema is not None:
            params |= self._structured(params["model"], schema)
        self._options(body, params)
        return params

    def _options(self, body: dict[str, Any], params: dict[str, Any]) -> None:
        for name, value in body.items():
            if name in SAMPLING and self.sampling == "drop":
                self.dropped.add(name)
            elif name == "stop":
                params["stop_sequences"] = [value] if isinstance(value, str) else list(value)
            elif name == "n":
                if value not in (1, None):
                    raise InputError("Anthropic gives one answer per request: n must be 1")
            elif name == "user":
                params["metadata"] = {"user_id": str(value)}
            elif name == "metadata" and isinstance(value, dict) and set(value) <= {"user_id"}:
                params["metadata"] = value
            elif name in SAMPLING or name in NATIVE:
                params[name] = value if name != "output_config" else {**value, **params.get(name, {})}
            elif name in UNSUPPORTED:
                raise InputError(f"body option {name!r} has no Anthropic equivalent: remove it from body_options")
            else:
                raise InputError(
                    f"body option {name!r} is not known for Anthropic; known: max_tokens, max_completion_tokens, "
                    f"stop, n, user, {', '.join(dict.fromkeys((*SAMPLING, *NATIVE)))}"
                )

    def _structured(self, model: str, schema: dict[str, Any]) -> dict[str, Any]:
        native = self.structured == "native" or (
            self.structured == "auto" and not NO_STRUCTURED_OUTPUTS.match(model)
        )
        cache = orjson.dumps([native, schema], option=orjson.OPT_SORT_KEYS)
        if cache not in self._schemas:
            if native:
                from anthropic import transform_schema  # moves what the API does not enforce into descriptions

                fmt = {"type": "json_schema", "schema": transform_schema(schema)}
                self._schemas[cache] = {"output_config": {"format": fmt}}
            else:
                tool = {"name": TOOL_NAME, "description": "Give your answer.", "input_schema": schema}
                self._schemas[cache] = {"tools": [tool], "tool_choice": {"type": "tool", "name": TOOL_NAME}}
        return self._schemas[cache]


def _chat_messages(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    system = [_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")]
    rest = [{"role": m["role"], "content": content_blocks(m["content"])} for m in messages if m.get("role") in ("user", "assistant")]
    if len(rest) + len(system) != len(messages):
        raise InputError("Anthropic takes system, user and assistant messages only")
    return "\n\n".join(system) or None, rest


def _responses_input(given: Any) -> list[dict[str, Any]]:
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    return [{"role": m["role"], "content": content_blocks(m["content"])} for m in given]  # image parts as image blocks


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [])


def output_line(raw: dict[str, Any], custom_id: str, created: int) -> tuple[str, dict[str, Any]]:
    """One Anthropic result line as an OpenAI batch output line: ``("outputs", line)`` for a succeeded request,
    ``("errors", line)`` for the others (errored: its error type and HTTP status; canceled/expired:
    ``batch_cancelled``/``batch_expired``, which the attempt loop treats as OpenAI's)."""
    result = raw["result"]
    kind = result.get("type")
    if kind == "succeeded":
        body = chat_completion(result["message"], created)
        return "outputs", {"custom_id": custom_id, "response": {"status_code": 200, "body": body}, "error": None}
    if kind == "errored":
        detail = (result.get("error") or {}).get("error") or {}
        code = detail.get("type") or "api_error"
        error = {"code": code, "message": detail.get("message") or code, "type": code}
        response = {"status_code": HTTP_STATUS.get(code, 500), "body": {"error": error}}
        return "errors", {"custom_id": custom_id, "response": response, "error": None}
    if kind in ("canceled", "expired"):
        code = "batch_cancelled" if kind == "canceled" else "batch_expired"
        message = f"This request was {kind} before it ran (Anthropic Message Batches)."
        return "errors", {"custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}
    raise ResultsUnreadable(f"result of {raw.get('custom_id')!r} has an unknown type {kind!r}")


FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}


def chat_completion(message: dict[str, Any], created: int) -> dict[str, Any]:
    """An Anthropic message as a ``chat.completion`` body: its text blocks (or the forced tool's input, as JSON) as
    the content, the stop reason as ``finish_reason``, the usage with cache tokens counted as prompt tokens."""
    blocks = message.get("content") or []
    tool = next((b for b in blocks if b.get("type") == "tool_use" and b.get("name") == TOOL_NAME), None)
    text = orjson.dumps(tool["input"]).decode() if tool else "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    stop = message.get("stop_reason")
    finish = "stop" if tool else FINISH.get(stop, "tool_calls" if stop == "tool_use" else "stop")
    usage = message.get("usage") or {}
    written, read = usage.get("cache_creation_input_tokens") or 0, usage.get("cache_read_input_tokens") or 0
    prompt, completion = (usage.get("input_tokens") or 0) + written + read, usage.get("output_tokens") or 0
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": (text or "refused") if stop == "refusal" else None},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
        },
    }


def batch_view(raw: dict[str, Any]) -> dict[str, Any]:
    """A message batch's JSON as an OpenAI batch's: ``in_progress`` -> ``in_progress``, ``canceling`` ->
    ``cancelling``, ``ended`` -> ``cancelled`` (cancel initiated), ``expired`` (requests expired) or
    ``completed``; counts total/completed (succeeded)/failed (errored, canceled, expired); RFC 3339 -> UNIX."""
    counts, state = raw.get("request_counts") or {}, raw.get("processing_status")
    n = {k: int(counts.get(k) or 0) for k in ("processing", "succeeded", "errored", "canceled", "expired")}
    ended, cancelled = _unix(raw.get("ended_at")), _unix(raw.get("cancel_initiated_at"))
    if state == "ended":
        status = "cancelled" if cancelled else "expired" if n["expired"] else "completed"
    else:
        status = "cancelling" if state == "canceling" else "in_progress"
    created = _unix(raw.get("created_at")) or 0
    return {
        "id": raw["id"],
        "object": "batch",
        "endpoint": Endpoint.CHAT.value,
        "input_file_id": "",
        "completion_window": "24h",
        "status": status,
        "output_file_id": f"{raw['id']}/results" if state == "ended" and raw.get("results_url") else None,
        "error_file_id": None,
        "created_at": created,
        "in_progress_at": created,
        "expires_at": _unix(raw.get("expires_at")),
        "cancelling_at": cancelled,
        "completed_at": ended if status == "completed" else None,
        "cancelled_at": ended if status == "cancelled" else None,
        "expired_at": ended if status == "expired" else None,
        "request_counts": {
            "total": sum(n.values()),
            "completed": n["succeeded"],
            "failed": n["errored"] + n["canceled"] + n["expired"],
        },
        "metadata": None,
    }


def _unix(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return int(value)
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
