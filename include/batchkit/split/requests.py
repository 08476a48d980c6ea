"""Batch API request lines: ``{"custom_id", "method", "url", "body"}`` built from fixed byte pieces.

Every line of one split shares the same JSON around its variable parts (the custom_id, the prompt and, with image
columns, one URL per image), so the shape is serialised once and each line is ``head + id + middle + prompt + tail``
(with images: ``... + prompt + piece + image 1 + piece + ... + image n + tail``). A request without images has the
very bytes it had before images existed: its fingerprint (``ledger.fingerprint``) does not change.
"""

import math
from dataclasses import dataclass
from typing import Any

import orjson

from ..batch_api import ENDPOINTS, Endpoint
from ..errors import InputError

_ID, _PROMPT = "\x00custom_id\x00", "\x00prompt\x00"
ID_PREFIX = b'{"custom_id":'  # every line starts so; what follows the custom_id is the request's content
_RESERVED_BODY_KEYS = {"model", "messages", "input", "instructions"}
DETAILS = ("auto", "low", "high")  # an image's detail on chat completions and responses
IMAGE_ENDPOINTS = frozenset({Endpoint.CHAT, Endpoint.RESPONSES, Endpoint.MODERATIONS})


def _image(i: int) -> str:
    return f"\x00image{i}\x00"


def dumps(value: str) -> bytes:
    """JSON-encode one string exactly as it appears inside a request line (UTF-8, not ASCII-escaped)."""
    return orjson.dumps(value)


@dataclass(frozen=True)
class RequestShape:
    """The fixed bytes of every request line for one endpoint, model and set of body options: ``pieces`` around
    the custom_id, the prompt and each image URL (``head`` first, ``tail`` last, newline included)."""

    endpoint: str
    model: str
    pieces: tuple[bytes, ...]

    @property
    def head(self) -> bytes:
        return self.pieces[0]

    @property
    def middle(self) -> bytes:
        return self.pieces[1]

    @property
    def tail(self) -> bytes:
        return self.pieces[-1]

    @property
    def images(self) -> int:
        """Image URLs per request."""
        return len(self.pieces) - 3

    @classmethod
    def build(
        cls,
        endpoint: str,
        model: str,
        system_prompt: str | None = None,
        body_options: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        images: int = 0,
        detail: str = "auto",
    ) -> "RequestShape":
        """:param output_schema: a JSON Schema every answer must follow (``batchkit.structured``).
        :param images: image URLs sent beside the prompt in every request (image columns), at ``detail``."""
        if endpoint not in ENDPOINTS:
            raise InputError(f"unsupported endpoint {endpoint!r}; choose one of {', '.join(ENDPOINTS)}")
        if not model or not model.strip():
            raise InputError("a model is required (for example gpt-4o-mini)")
        options = dict(body_options or {})
        _refuse_non_finite(options, "body options")
        clash = sorted(_RESERVED_BODY_KEYS & options.keys())
        if clash:
            raise InputError(f"--body-json must not set {', '.join(clash)}: they are built from --model and the prompt")
        if output_schema is not None:
            from ..structured import request_fields

            asked = request_fields(endpoint, output_schema)
            clash = sorted(asked.keys() & options.keys())
            if clash:
                raise InputError(f"--body-json must not set {', '.join(clash)} with an output schema: it sets them")
            options |= asked
        if images and endpoint not in IMAGE_ENDPOINTS:
            raise InputError(f"{endpoint} takes no images: remove the image columns")
        if detail not in DETAILS:
            raise InputError(f"image detail must be one of {', '.join(DETAILS)}, got {detail!r}")
        body: dict[str, Any] = {"model": model, **options}
        prompt: Any = _PROMPT
        if endpoint == Endpoint.CHAT:
            if images:
                parts = [
                    {"type": "image_url", "image_url": {"url": _image(i), "detail": detail}} for i in range(images)
                ]
                prompt = [{"type": "text", "text": _PROMPT}, *parts]
            system = [{"role": "system", "content": system_prompt}] if system_prompt else []
            body["messages"] = [*system, {"role": "user", "content": prompt}]
        elif endpoint == Endpoint.RESPONSES:
            if system_prompt:
                body["instructions"] = system_prompt
            if images:
                parts = [{"type": "input_image", "image_url": _image(i), "detail": detail} for i in range(images)]
                prompt = [{"role": "user", "content": [{"type": "input_text", "text": _PROMPT}, *parts]}]
            body["input"] = prompt
        else:
            if system_prompt:
                raise InputError(f"{endpoint} takes no system prompt: remove --system-prompt")
            if images:  # the moderation API's multi-modal input
                parts = [{"type": "image_url", "image_url": {"url": _image(i)}} for i in range(images)]
                prompt = [{"type": "text", "text": _PROMPT}, *parts]
            body["input"] = prompt
        line = orjson.dumps({"custom_id": _ID, "method": "POST", "url": endpoint, "body": body})
        pieces = []
        for value in (_ID, _PROMPT, *map(_image, range(images))):
            piece, line = line.split(dumps(value))
            pieces.append(piece)
        assert pieces[0] == ID_PREFIX, pieces[0]
        return cls(endpoint, model, (*pieces, line + b"\n"))

    def line(self, custom_id: str, prompt: str, *images: str) -> bytes:
        """One complete JSONL line, newline included."""
        values = (custom_id, prompt, *images)
        if len(values) != len(self.pieces) - 1:
            raise ValueError(f"this shape takes {self.images} image URL(s), got {len(images)}")
        return b"".join(piece + dumps(value) for piece, value in zip(self.pieces, values)) + self.tail

    @property
    def fixed_text(self) -> str:
        """The system prompt or instructions text, counted once per request by token estimates."""
        body = orjson.loads(self.line("", "", *[""] * self.images))["body"]
        messages = body.get("messages", [])
        return (body.get("instructions") or "") + "".join(m["content"] for m in messages if m["role"] == "system")


def _refuse_non_finite(value: Any, where: str) -> None:
    """NaN and Infinity are not JSON: the encoder would write them as null, silently changing the request."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{where}: {value} is not a JSON number (NaN and Infinity cannot be sent)")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_non_finite(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _refuse_non_finite(item, f"{where}[{i}]")
