"""Structured outputs: a JSON Schema every answer must follow -> request body fields, answer checks, typed columns.

The schema's top-level properties become warehouse columns, typed from the schema:

============================  =======================================
JSON Schema                   column (Arrow type)
============================  =======================================
string, enum of strings       string
number                        float64
integer                       int64
boolean                       bool
array of one scalar type      list of that type
object, array of objects,     string holding the JSON text
mixed types (anyOf, [a, b])
============================  =======================================

``"type": [T, "null"]`` is T (nullable). ``$ref`` to ``#/$defs/...`` (or ``#/definitions/...``) is followed.
"""

from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from .batch_api import OUTPUT_TRUNCATED as TRUNCATED
from .batch_api import TEXT_ENDPOINTS, Endpoint
from .errors import InputError
from .results.answers import ResultStatus

SCHEMA_NAME = "answer"  # the json_schema name sent with every request
INVALID = ResultStatus.INVALID_OUTPUT  # the result status of a 200 answer that does not follow the schema
REFUSED, NOT_JSON, MISMATCH = "output_refused", "output_not_json", "output_schema_mismatch"
_SCALARS = {"string": pa.string(), "number": pa.float64(), "integer": pa.int64(), "boolean": pa.bool_()}


def load_schema(spec: dict[str, Any] | str | type | None) -> dict[str, Any] | None:
    """An output schema given as a JSON Schema object, a Pydantic model class, or its dotted import path
    (``package.module.Model``); Pydantic models get OpenAI's strict form (every property required, no others)."""
    if spec is None or spec == {} or spec == "":
        return None
    if isinstance(spec, str):
        import importlib

        module, _, name = spec.rpartition(".")
        try:
            spec = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise InputError(f"output schema {spec!r}: no such Pydantic model ({exc})") from None
    if isinstance(spec, type) and hasattr(spec, "model_json_schema"):
        from openai.lib._pydantic import to_strict_json_schema  # the SDK's own conversion for strict outputs

        spec = to_strict_json_schema(spec)
    check_schema(spec)
    return spec  # type: ignore[return-value]


def request_fields(endpoint: str, schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    """The body fields that ask ``endpoint`` for answers following ``schema`` (in strict mode: checked first
    against OpenAI's rules for strict schemas, which would otherwise fail every line of the batch)."""
    check_schema(schema)
    if endpoint not in TEXT_ENDPOINTS:
        raise InputError(f"an output schema needs a text endpoint, not {endpoint} (embeddings have no answer text)")
    if strict:
        check_strict(schema)
    if endpoint == Endpoint.CHAT:
        spec = {"name": SCHEMA_NAME, "schema": schema, "strict": strict}
        return {"response_format": {"type": "json_schema", "json_schema": spec}}
    return {"text": {"format": {"type": "json_schema", "name": SCHEMA_NAME, "schema": schema, "strict": strict}}}


def schema_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema a request body asks for (see ``request_fields``), or None."""
    for path in (("response_format", "json_schema", "schema"), ("text", "format", "schema")):
        found: Any = body
        for key in path:
            found = found.get(key) if isinstance(found, dict) else None
        if isinstance(found, dict):
            return found
    return None


def check_schema(schema: Any) -> None:
    """Refuse a schema the Batch API would refuse or that yields no columns, naming what is wrong."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict) or schema.get("type") != "object" or not schema.get("properties"):
        raise InputError('the output schema must be a JSON Schema object with properties ({"type": "object", ...})')
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InputError(f"the output schema is not a valid JSON Schema: {exc.message}") from None
    for name in schema["properties"]:
        if not name or "\x00" in name or len(name.encode()) > 63:
            raise InputError(f"output schema property {name!r} cannot be a column name (empty, NUL or > 63 bytes)")


def check_strict(schema: dict[str, Any]) -> None:
    """OpenAI's strict structured outputs need every object to list all its properties in ``required`` and to set
    ``additionalProperties: false``; refuse a schema that does not, naming where (Pydantic models get both)."""
    problems = []

    def walk(spec: Any, path: str) -> None:
        if isinstance(spec, list):
            for i, item in enumerate(spec):
                walk(item, f"{path}[{i}]")
            return
        if not isinstance(spec, dict):
            return
        kinds = spec.get("type") if isinstance(spec.get("type"), list) else [spec.get("type")]
        if "object" in kinds or "properties" in spec:
            missing = [name for name in spec.get("properties") or {} if name not in (spec.get("required") or [])]
            if missing:
                problems.append(f"{path}: 'required' lacks {', '.join(map(repr, missing))}")
            if spec.get("additionalProperties") is not False:
                problems.append(f"{path}: 'additionalProperties' must be false")
        for key, value in spec.items():
            if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                for name, sub in value.items():
                    walk(sub, f"{path}.{key}.{name}")
            elif key in ("items", "anyOf", "oneOf", "allOf", "not", "prefixItems"):
                walk(value, f"{path}.{key}")

    walk(schema, "$")
    if problems:
        raise InputError(
            f"the output schema is not strict, which OpenAI refuses for every request: {'; '.join(problems[:5])}"
            f"{f' (and {len(problems) - 5} more)' if len(problems) > 5 else ''}. List every property in "
            '\'required\' (make optional ones nullable: {"type": ["string", "null"]}) and set '
            "'additionalProperties': false on every object"
        )


@dataclass(frozen=True)
class Column:
    """One typed column: a top-level property of the schema. ``json``: the value is kept as JSON text."""

    name: str
    type: pa.DataType
    json: bool


def columns(schema: dict[str, Any]) -> list[Column]:
    """The typed columns for ``schema``'s top-level properties, in declaration order."""
    check_schema(schema)
    found = []
    for name, spec in schema["properties"].items():
        kind = _kind(spec, schema)
        if kind in _SCALARS:
            found.append(Column(name, _SCALARS[kind], False))
        elif kind.startswith("array:") and kind[6:] in _SCALARS:
            found.append(Column(name, pa.list_(_SCALARS[kind[6:]]), False))
        else:
            found.append(Column(name, pa.string(), True))
    return found


def check_columns(schema: dict[str, Any], input_columns: list[str]) -> None:
    """The schema's properties become columns beside the kept input columns and the result columns: refuse a
    property that shares a name with one of them (case-insensitively, as warehouses compare names)."""
    from .results.result_schema import RESULT_SCHEMA
    from .warehouse import LOAD_COLUMNS

    taken = {name.lower(): f"input column {name!r}" for name in input_columns}
    taken |= {name.lower(): f"result column {name!r}" for name in [*RESULT_SCHEMA.names, *(n for n, _ in LOAD_COLUMNS)]}
    clashes = [f"{c.name!r} (the {taken[c.name.lower()]})" for c in columns(schema) if c.name.lower() in taken]
    if clashes:
        raise InputError(
            f"output schema properties collide with columns of the results: {', '.join(clashes)}; rename the "
            "properties, or leave the input column out (input_columns)"
        )


def _kind(spec: Any, root: dict[str, Any]) -> str:
    """``string``/``number``/``integer``/``boolean``/``array:<item kind>``/``object``/``mixed``."""
    if not isinstance(spec, dict):
        return "mixed"
    if isinstance(spec.get("$ref"), str):
        return _kind(_resolve(spec["$ref"], root), root)
    branches = spec.get("anyOf") or spec.get("oneOf")
    if branches:
        kinds = {_kind(b, root) for b in branches} - {"null"}
        return kinds.pop() if len(kinds) == 1 else "mixed"
    types = spec.get("type")
    if isinstance(types, list):
        non_null = [t for t in types if t != "null"]
        types = non_null[0] if len(non_null) == 1 else "mixed"
    if types is None and isinstance(spec.get("enum"), list):
        values = spec["enum"]
        types = "string" if values and all(isinstance(v, str) for v in values) else "mixed"
    if types == "array":
        return f"array:{_kind(spec.get('items'), root)}"
    return types if types in (*_SCALARS, "object", "null") else "mixed"


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            return (root.get(prefix[2:-1]) or {}).get(ref[len(prefix) :])
    return None


class AnswerCheck:
    """Decides whether one 200 answer follows the schema; the reason when it does not."""

    def __init__(self, schema: dict[str, Any]) -> None:
        from jsonschema import Draft202012Validator

        self._validator = Draft202012Validator(schema)

    def problem(self, text: str | None, finish_reason: str | None, refusal: str | None) -> tuple[str, str] | None:
        """``(error_code, message)`` for an answer that does not follow the schema, else None."""
        if refusal:
            return REFUSED, f"the model refused: {refusal[:300]}"
        if finish_reason == "length":
            return TRUNCATED, "the answer was cut off at its token limit (finish_reason=length)"
        if text is None:
            return NOT_JSON, "the answer has no text"
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return NOT_JSON, f"the answer is not JSON ({exc})"
        error = next(iter(sorted(self._validator.iter_errors(value), key=lambda e: list(e.path))), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return MISMATCH, f"the answer does not follow the schema at {where}: {error.message[:300]}"
        return None
