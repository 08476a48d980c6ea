"""What answers each request line: ``echo`` (deterministic, offline) or ``forward`` (an OpenAI-compatible upstream)."""

import asyncio
import hashlib
import math
import struct
from dataclasses import dataclass
from typing import Any

import httpx

from ..batch_api import Endpoint
from . import structured
from .checks import integer
from .errors import envelope, server_error

ECHO_CHARS = 200


@dataclass
class LineResult:
    status_code: int
    body: dict[str, Any]


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode()).hexdigest()[:24]


def _text_of(content: Any) -> str:
    """Text of a message content: a string, or a list of parts with text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _bad_request(message: str, param: str | None, code: str = "missing_required_parameter") -> LineResult:
    return LineResult(400, envelope(message, param=param, code=code))


MAX_DIMENSIONS = 3072  # the largest OpenAI embedding (text-embedding-3-large)
MAX_EMBEDDING_INPUTS = 2048  # inputs in one embeddings request, as OpenAI limits it


def echo(
    url: str,
    body: dict[str, Any],
    key: str,
    created: int,
    embedding_dimensions: int,
    invalid_output: str | None = None,
) -> LineResult:
    """A realistic, deterministic response body for one request; ``key`` makes ids unique per line. A body the
    API would refuse gets a 400 line (as OpenAI puts it in the error file), never an exception. A request for
    structured output gets JSON following its schema, or the ``invalid_output`` kind of bad answer
    (``structured.INVALID_KINDS``)."""
    try:
        return _echo(url, body, key, created, embedding_dimensions, invalid_output)
    except structured.SchemaError as exc:
        return _bad_request(str(exc), exc.param, "invalid_value")
    except (AttributeError, TypeError, ValueError, KeyError, OverflowError) as exc:
        return _bad_request(f"Invalid request body: {type(exc).__name__}", None, "invalid_request_error")


def _echo(
    url: str, body: dict[str, Any], key: str, created: int, embedding_dimensions: int, invalid_output: str | None
) -> LineResult:
    if not isinstance(body, dict):
        return _bad_request("The request body must be a JSON object.", None, "invalid_type")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _bad_request("you must provide a model parameter", "model")
    if url == Endpoint.CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _bad_request("Missing required parameter: 'messages'.", "messages")
        if not all(isinstance(m, dict) for m in messages):
            return _bad_request(
                "Invalid type for 'messages': each message must be an object.", "messages", "invalid_type"
            )
        prompt = "\n".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))
        user = next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), prompt)
        answer = structured.respond(url, body, user, invalid_output) or structured.Answer(f"echo: {user[:ECHO_CHARS]}")
        p, c = _tokens(prompt) + 4 * len(messages), _tokens(answer.text or answer.refusal or "")
        return LineResult(
            200,
            {
                "id": f"chatcmpl-{_digest(key)}",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": answer.text,
                            "refusal": answer.refusal,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": "length" if answer.truncated else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": p,
                    "completion_tokens": c,
                    "total_tokens": p + c,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
                "service_tier": "default",
                "system_fingerprint": "fp_emulator",
            },
        )
    if url == Endpoint.RESPONSES:
        if "input" not in body:
            return _bad_request("Missing required parameter: 'input'.", "input")
        given = body["input"]
        if not isinstance(given, str | list):
            return _bad_request("Invalid type for 'input': expected a string or an array.", "input", "invalid_type")
        text = (
            given
            if isinstance(given, str)
            else "\n".join(_text_of(item.get("content")) for item in given if isinstance(item, dict))
        )
        answer = structured.respond(url, body, text, invalid_output) or structured.Answer(f"echo: {text[:ECHO_CHARS]}")
        p, c = _tokens(text + (body.get("instructions") or "")), _tokens(answer.text or answer.refusal or "")
        status = "incomplete" if answer.truncated else "completed"
        part = (
            {"type": "refusal", "refusal": answer.refusal}
            if answer.text is None
            else {"type": "output_text", "text": answer.text, "annotations": []}
        )
        return LineResult(
            200,
            {
                "id": f"resp_{_digest(key)}",
                "object": "response",
                "created_at": created,
                "status": status,
                "model": model,
                "error": None,
                "incomplete_details": {"reason": "max_output_tokens"} if answer.truncated else None,
                "instructions": body.get("instructions"),
                "output": [
                    {
                        "type": "message",
                        "id": f"msg_{_digest(key, 'msg')}",
                        "status": status,
                        "role": "assistant",
                        "content": [part],
                    }
                ],
                "usage": {
                    "input_tokens": p,
                    "output_tokens": c,
                    "total_tokens": p + c,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens_details": {"reasoning_tokens": 0},
                },
            },
        )
    if url == Endpoint.EMBEDDINGS:
        given = body.get("input")
        if given is None:
            return _bad_request("Missing required parameter: 'input'.", "input")
        inputs = given if isinstance(given, list) else [given]
        if (
            not isinstance(given, str | list)
            or not inputs
            or len(inputs) > MAX_EMBEDDING_INPUTS
            or not all(_embeddable(i) for i in inputs)
        ):
            return _bad_request(
                f"Invalid 'input': a non-empty string, an array of 1 to {MAX_EMBEDDING_INPUTS} strings, or tokens.",
                "input",
                "invalid_value",
            )
        dims = integer(body.get("dimensions", embedding_dimensions)) or 0
        if not 1 <= dims <= MAX_DIMENSIONS:
            return _bad_request(
                f"Invalid 'dimensions': an integer from 1 to {MAX_DIMENSIONS}.", "dimensions", "invalid_value"
            )
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(str(item), dims)} for i, item in enumerate(inputs)
        ]
        p = sum(_tokens(str(item)) for item in inputs)
        return LineResult(
            200, {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": p, "total_tokens": p}}
        )
    return _bad_request(f"Invalid URL (POST {url})", "url", "invalid_url")


def _embeddable(item: Any) -> bool:
    """A non-empty string or token list (an int in a token array, as OpenAI accepts it)."""
    if isinstance(item, list):
        return bool(item) and all(integer(t) is not None for t in item)
    return (isinstance(item, str) and bool(item)) or integer(item) is not None


def _vector(text: str, dims: int) -> list[float]:
    """A deterministic unit vector derived from the text."""
    raw = b"".join(hashlib.sha256(f"{i}:{text}".encode()).digest() for i in range(math.ceil(dims * 4 / 32)))
    values = [v / 2**31 - 1.0 for v in struct.unpack(f"<{dims}I", raw[: dims * 4])]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


class Forwarder:
    """Runs request lines against an upstream OpenAI-compatible server with bounded concurrency."""

    def __init__(self, base_url: str, api_key: str | None, concurrency: int) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=600)
        self._slots = asyncio.Semaphore(concurrency)

    async def run(self, url: str, body: dict[str, Any]) -> LineResult:
        path = url.removeprefix("/v1")
        async with self._slots:
            try:
                response = await self._client.post(path, json=body)
            except httpx.HTTPError as exc:
                return LineResult(502, server_error(f"upstream request failed: {type(exc).__name__}"))
        try:
            payload = response.json()
        except ValueError:
            payload = server_error("upstream returned a non-JSON body")
        return LineResult(response.status_code, payload)

    async def close(self) -> None:
        await self._client.aclose()
