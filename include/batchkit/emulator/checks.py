"""What the emulator's routes share: request bodies read and checked within bounds (size, nesting, metadata) and
list pages (file lifetimes: ``lifetimes``)."""

from typing import Any

import orjson
from fastapi import Request

from ..batch_api import Endpoint
from .errors import APIError

MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
MAX_JSON_BYTES = 4 << 20  # a JSON request body (batch create, the synchronous endpoints)
ENDPOINTS = tuple(e.value for e in Endpoint)  # every endpoint the Batch API accepts
COMPLETION_WINDOWS = ("24h",)
PURPOSES = ("batch", "assistants", "fine-tune", "vision", "user_data", "evals")


async def json_body(request: Request, max_bytes: int = MAX_JSON_BYTES) -> dict:
    """The request's JSON object, read up to ``max_bytes`` (413 beyond) and parsed by orjson, which refuses
    nesting deeper than 1,024 levels (400) instead of recursing."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise APIError(413, f"The request body is larger than {max_bytes:,} bytes.", None, "request_too_large")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise APIError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.")
    return body


def integer(value: Any) -> int | None:
    """``value`` as an int when JSON Schema calls it an integer (``3600`` or ``3600.0``, never ``true``), else None."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value if type(value) is int else None


def check_metadata(metadata: Any) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise APIError(400, "Invalid type for 'metadata': expected an object.", "metadata", "invalid_type")
    if len(metadata) > MAX_METADATA_PAIRS:
        raise APIError(
            400,
            f"Invalid 'metadata': too many properties ({len(metadata)}); at most 16.",
            "metadata",
            "object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY:
            raise APIError(
                400,
                f"Invalid 'metadata': key {key[:20]!r}... is longer than 64 characters.",
                "metadata",
                "invalid_value",
            )
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE:
            raise APIError(
                400,
                f"Invalid 'metadata.{key}': values must be strings of at most 512 characters.",
                f"metadata.{key}",
                "invalid_value",
            )
    return metadata


def page(data: list[dict], more: bool) -> dict:
    """A list page in OpenAI's cursor-pagination shape."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }
