"""Batch API request lines: ``{"custom_id", "method", "url", "body"}`` built from fixed byte pieces.

Every line of one split shares the same JSON around two variable parts (the custom_id and the
prompt), so the shape is serialised once and each line is ``head + id + middle + prompt + tail``.
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


def dumps(value: str) -> bytes:
    """JSON-encode one string exactly as it appears inside a request line (UTF-8, not ASCII-escaped)."""
    return orjson.dumps(value)


@dataclass(frozen=True)
class RequestShape:
    """The fixed bytes of every request line for one endpoint, model and set of body options."""

    endpoint: str
    model: str
    head: bytes
    middle: bytes
    tail: bytes

    @classmethod
    def build(
        cls,
        endpoint: str,
        model: str,
        system_prompt: str | None = None,
        body_options: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
    ) -> "RequestShape":
        """:param output_schema: a JSON Schema every answer must follow (``batchkit.structured``)."""
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
        body: dict[str, Any] = {"model": model, **options}
        if endpoint == Endpoint.CHAT:
            system = [{"role": "system", "content": system_prompt}] if system_prompt else []
            body["messages"] = [*system, {"role": "user", "content": _PROMPT}]
        elif endpoint == Endpoint.RESPONSES:
            if system_prompt:
                body["instructions"] = system_prompt
            body["input"] = _PROMPT
        else:
            if system_prompt:
                raise InputError(f"{Endpoint.EMBEDDINGS} takes no system prompt: remove --system-prompt")
            body["input"] = _PROMPT
        line = orjson.dumps({"custom_id": _ID, "method": "POST", "url": endpoint, "body": body})
        head, rest = line.split(dumps(_ID))
        middle, tail = rest.split(dumps(_PROMPT))
        assert head == ID_PREFIX, head
        return cls(endpoint, model, head, middle, tail + b"\n")

    def line(self, custom_id: str, prompt: str) -> bytes:
        """One complete JSONL line, newline included."""
        return self.head + dumps(custom_id) + self.middle + dumps(prompt) + self.tail

    @property
    def fixed_text(self) -> str:
        """The system prompt or instructions text, counted once per request by token estimates."""
        body = orjson.loads(self.line("", ""))["body"]
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
