"""What answers each request line: ``echo`` (deterministic, offline) or ``forward`` (an OpenAI-compatible upstream)."""

import asyncio
import hashlib
import math
import struct
from typing import Any

import httpx

from ..batch_api import Endpoint
from . import conversations, generations, moderations, structured
from .checks import integer
from .errors import server_error
from .lines import LineError, LineResult
from .lines import bad_request as _bad_request
from .lines import tokens as _tokens

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
    except LineError as exc:
        return exc.result()
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
        return conversations.chat(body, model, key, created, invalid_output)
    if url == Endpoint.RESPONSES:
        return conversations.responses(body, model, key, created, invalid_output)
    if url == Endpoint.MODERATIONS:
        return moderations.moderate(body, model, key)
    if url == Endpoint.COMPLETIONS:
        return generations.completion(body, model, key, created)
    if url in (Endpoint.IMAGES_GENERATIONS, Endpoint.IMAGES_EDITS):
        return generations.images(url, body, model, key, created)
    if url == Endpoint.VIDEOS:
        return generations.video(body, model, key, created)
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
