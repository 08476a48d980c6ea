"""Structured outputs for the echo backend: a deterministic JSON instance of the JSON schema a request asks for,
and the three ways a real structured answer goes wrong (cut off, refused, not matching the schema)."""

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ..batch_api import Endpoint

REFUSAL = "I'm sorry, I can't help with that request."
INVALID_KINDS = ("truncated", "refusal", "mismatch")
WORDS = ("alpha", "bravo", "delta", "echo", "golf", "kilo", "lima", "oscar")
SHALLOW_DEPTH = 6  # past this nesting, optional branches (null, no items) are taken so recursive schemas end
MAX_DEPTH = 64
MAX_ANSWER_SIZE = 1_000_000  # values + characters of one answer: far more than a model writes in one reply


class SchemaError(ValueError):
    """A structured-output request the API refuses; ``param`` names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Answer:
    """What the model says: ``text`` (None when it refused), and whether it was cut off."""

    text: str | None
    refusal: str | None = None
    truncated: bool = False


def respond(url: str, body: dict[str, Any], prompt: str, invalid: str | None) -> Answer | None:
    """The answer to a request for structured output (None if it wants free text): compact JSON following its
    schema, derived from ``prompt``, or the ``invalid`` kind of bad answer (one of INVALID_KINDS)."""
    param = "text.format" if url == Endpoint.RESPONSES else "response_format"
    schema = _requested_schema(body, param)
    return None if schema is None else answer(schema, prompt, invalid, param)


def answer(schema: dict[str, Any], prompt: str, invalid: str | None, param: str) -> Answer:
    """Compact JSON following ``schema`` (the request's ``param``), derived from ``prompt``, or the ``invalid``
    kind of bad answer."""
    value = instance(schema, prompt, param)
    text = _compact(value)
    if invalid == "truncated":
        return Answer(text[: len(text) // 2], truncated=True)
    if invalid == "refusal":
        return Answer(None, REFUSAL)
    if invalid == "mismatch":
        return Answer(_compact(mismatch(schema, value)))
    return Answer(text)


def instance(schema: dict[str, Any], prompt: str, param: str) -> Any:
    """A deterministic instance of ``schema`` derived from ``prompt``; a SchemaError names ``param``."""
    try:
        return _Generator(schema, prompt).value(schema, "$", 0)
    except SchemaError as exc:
        raise SchemaError(f"Invalid schema for '{param}': {exc}", param) from None


def _requested_schema(body: dict[str, Any], param: str) -> dict[str, Any] | None:
    if param == "text.format":
        text = body.get("text")
        if text is None:
            return None
        if not isinstance(text, dict):
            raise SchemaError("Invalid type for 'text': expected an object.", "text")
        fmt = spec = text.get("format")
    else:
        fmt = body.get("response_format")
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") in ("text", "json_object")):
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise SchemaError(
            f"Invalid value for '{param}.type': supported values are 'text', 'json_object' and 'json_schema'.", param
        )
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise SchemaError(f"Missing required parameter: '{param}' needs a json_schema with a 'name'.", param)
    schema = spec.get("schema")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise SchemaError(f"Invalid schema for '{param}': the root must be a JSON schema of type 'object'.", param)
    return schema


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def mismatch(schema: dict[str, Any], value: Any) -> Any:
    """Valid JSON that breaks the schema: the first required property left out, else not an object at all."""
    required = schema.get("required")
    dropped = next((n for n in required if n in value), None) if isinstance(required, list) else None
    return {k: v for k, v in value.items() if k != dropped} if dropped is not None else [value]


class _Generator:
    """Builds an instance top-down; every choice is a hash of the prompt and the position in the schema."""

    def __init__(self, root: dict[str, Any], prompt: str) -> None:
        self.root, self.prompt = root, prompt
        self.words = [w.lower() for w in re.findall(r"[^\W\d_]{3,12}", prompt)] or list(WORDS)
        self.size = 0  # values and characters made so far, bounded by MAX_ANSWER_SIZE

    def afford(self, amount: int, path: str) -> None:
        """Refuse a schema whose minimums ask for more than any reply: ``amount`` more would pass the bound."""
        if self.size + amount > MAX_ANSWER_SIZE:
            raise SchemaError(f"the answer it asks for (minItems/minLength at {path}) is longer than a reply can be")

    def spend(self, amount: int, path: str) -> None:
        """Count ``amount`` more of the answer (values and characters made)."""
        self.afford(amount, path)
        self.size += amount

    def unit(self, path: str) -> float:
        digest = hashlib.sha256(f"{self.prompt}\x00{path}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def value(self, schema: Any, path: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise SchemaError("nested too deeply (a $ref cycle?)")
        if schema is True:
            return self.string({}, path)
        if not isinstance(schema, dict):
            raise SchemaError(f"{path} is not a schema")
        self.spend(1, path)
        shallow = depth < SHALLOW_DEPTH
        if "$ref" in schema:
            return self.value(self.resolve(schema["$ref"]), path, depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][int(self.unit(path) * len(schema["enum"]))]
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                branches = schema[key]
                null = next((b for b in branches if isinstance(b, dict) and b.get("type") == "null"), None)
                return self.value(branches[0] if shallow or null is None else null, path, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null") if shallow or "null" not in kind else "null"
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        if kind == "object":
            properties = schema.get("properties") or {}
            return {name: self.value(sub, f"{path}.{name}", depth + 1) for name, sub in properties.items()}
        if kind == "array":
            return self.array(schema, path, depth, shallow)
        if kind in ("number", "integer"):
            return self.number(schema, path, kind == "integer")
        if kind == "boolean":
            return self.unit(path) < 0.5
        if kind == "null":
            return None
        if kind == "string":
            return self.string(schema, path)
        raise SchemaError(f"unknown type {kind!r} at {path}")

    def resolve(self, ref: Any) -> Any:
        """A local reference: ``#``, ``#/$defs/Name``, ``#/definitions/Name`` or any JSON pointer into the root."""
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError(f"unsupported $ref {ref!r}")
        target: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or key not in target:
                raise SchemaError(f"$ref {ref!r} points nowhere")
            target = target[key]
        return target

    def string(self, schema: dict[str, Any], path: str) -> str:
        word = self.words[int(self.unit(path) * len(self.words))]
        if isinstance(schema.get("maxLength"), int):
            word = word[: schema["maxLength"]]
        self.spend(max(len(word), schema["minLength"] if isinstance(schema.get("minLength"), int) else 0), path)
        return word.ljust(schema["minLength"], "x") if isinstance(schema.get("minLength"), int) else word

    def array(self, schema: dict[str, Any], path: str, depth: int, shallow: bool) -> list[Any]:
        given_min, given_max = _count(schema, "minItems"), _count(schema, "maxItems")
        default_min = 1 if shallow else 0  # 1-3 items, none once deep
        low = given_min if given_min is not None else min(default_min, default_min if given_max is None else given_max)
        high = given_max if given_max is not None else max(low, 3)
        if low > high:
            raise SchemaError(f"minItems > maxItems at {path}")
        self.afford(low, path)  # before making any of them (each is counted as it is made)
        count = low + int(self.unit(path) * (high - low + 1)) if shallow else low
        return [self.value(schema.get("items", {}), f"{path}[{i}]", depth + 1) for i in range(count)]

    def number(self, schema: dict[str, Any], path: str, integer: bool) -> int | float:
        minimum, maximum = _bound(schema, "minimum"), _bound(schema, "maximum")
        above, below = _bound(schema, "exclusiveMinimum"), _bound(schema, "exclusiveMaximum")
        lows, highs = [], []
        if minimum is not None:
            lows.append(math.ceil(minimum) if integer else minimum)
        if above is not None:
            lows.append(math.floor(above) + 1 if integer else above)
        if maximum is not None:
            highs.append(math.floor(maximum) if integer else maximum)
        if below is not None:
            highs.append(math.ceil(below) - 1 if integer else below)
        span = 100 if integer else 1  # numbers default to [0, 1], integers to [0, 100]
        lo = max(lows) if lows else (min(highs) - span if highs else 0)
        hi = min(highs) if highs else lo + span
        if lo > hi:
            raise SchemaError(f"no number fits the bounds at {path}")
        u = self.unit(path)
        if integer:
            return min(hi, lo + int(u * (hi - lo + 1)))
        value = round(lo + (hi - lo) * (0.1 + 0.8 * u), 4)
        return value if lo < value < hi else lo + (hi - lo) / 2


def _bound(schema: dict[str, Any], key: str) -> float | None:
    given = schema.get(key)
    return given if isinstance(given, int | float) and not isinstance(given, bool) else None


def _count(schema: dict[str, Any], key: str) -> int | None:
    given = schema.get(key)
    return given if type(given) is int and given >= 0 else None
