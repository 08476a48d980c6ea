"""How long files live: ``expires_after`` on an upload (the openai SDK sends it as the multipart fields
``expires_after[anchor]`` and ``expires_after[seconds]``), ``output_expires_after`` on a batch (for its output and
error files, anchored at their own creation), and the API's documented default: files of purpose ``batch`` expire
after 30 days, every other file (batch output included) lives until deleted. ``file_expiry_scale`` makes those
seconds pass faster here, so tests see a file expire; an expired file answers 404 and its bytes are removed."""

import math
from typing import Any

import orjson

from .checks import integer
from .errors import APIError

MIN_SECONDS, MAX_SECONDS = 3600, 2_592_000
BATCH_INPUT_SECONDS = 30 * 24 * 3600  # "files with purpose=batch expire after 30 days" by default
ANCHORS = ("created_at",)


def check_expiry(value: Any, name: str = "output_expires_after") -> dict | None:
    """``{"anchor": "created_at", "seconds": 3600..2592000}`` as the API accepts it for ``name``, or a 400."""
    if value is None:
        return None
    shape = f'Invalid \'{name}\': expected {{"anchor": "created_at", "seconds": {MIN_SECONDS} to {MAX_SECONDS}}}.'
    if not isinstance(value, dict) or set(value) != {"anchor", "seconds"}:
        raise APIError(400, shape, name, "invalid_value")
    if value["anchor"] not in ANCHORS:
        raise APIError(
            400, f"Invalid value: {str(value['anchor'])[:40]!r}. Supported values are: 'created_at'.", f"{name}.anchor"
        )
    seconds = integer(value["seconds"])
    if seconds is None:
        raise APIError(
            400, f"Invalid type for '{name}.seconds': expected an integer.", f"{name}.seconds", "invalid_type"
        )
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        above = seconds > MAX_SECONDS
        raise APIError(
            400,
            f"Invalid '{name}.seconds': integer {'above maximum' if above else 'below minimum'} value. Expected a "
            f"value {'<=' if above else '>='} {MAX_SECONDS if above else MIN_SECONDS}, but got {seconds} instead.",
            f"{name}.seconds",
            "integer_above_max_value" if above else "integer_below_min_value",
        )
    return {"anchor": "created_at", "seconds": seconds}


def form_expiry(fields: dict[str, str]) -> dict | None:
    """An upload's ``expires_after`` from its form fields: ``expires_after[anchor]`` and ``expires_after[seconds]``
    (the SDK's encoding), or one ``expires_after`` field holding a JSON object (OpenAPI's encoding of an object
    in a multipart body); None when neither is there."""
    prefix = "expires_after["
    bracketed = {k[len(prefix) : -1]: v for k, v in fields.items() if k.startswith(prefix) and k.endswith("]")}
    if "expires_after" in fields:
        if bracketed:
            raise APIError(400, "Send 'expires_after' once: as one JSON field or as its [anchor] and [seconds] fields.")
        try:
            value = orjson.loads(fields["expires_after"])
        except orjson.JSONDecodeError:
            value = fields["expires_after"]
    elif bracketed:
        value = dict(bracketed)
        seconds = value.get("seconds", "")
        if seconds.strip().lstrip("-").isdigit():
            value["seconds"] = int(seconds)
    else:
        return None
    return check_expiry(value, "expires_after")


def upload_expiry(purpose: str, expiry: dict | None) -> dict | None:
    """What an upload lives by: its own ``expires_after``, else 30 days for purpose ``batch``, else for ever."""
    if expiry is None and purpose == "batch":
        return {"anchor": "created_at", "seconds": BATCH_INPUT_SECONDS}
    return expiry


def lifetime(expiry: dict | None, scale: float) -> int | None:
    """The seconds a file with ``expiry`` lives here (``scale`` of the asked seconds, at least 1), None for ever."""
    return None if expiry is None else max(1, math.ceil(expiry["seconds"] * scale))
