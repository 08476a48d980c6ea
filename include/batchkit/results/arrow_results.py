"""The fast path of result parsing: a batch output/error file read in blocks by Arrow's JSON reader (C++, no
per-row Python objects) into ``PARSED_SCHEMA`` record batches. Shapes it cannot type raise ``NeedsPerLine``."""

from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ..errors import ResultsUnreadable
from .answers import ResultStatus
from .result_schema import PARSED_SCHEMA


class NeedsPerLine(Exception):
    """Arrow's JSON reader cannot type this file; parse it line by line."""


_ERROR = pa.struct([("code", pa.string()), ("message", pa.string())])
_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens")
# usage.prompt_tokens_details (chat; cache_write_tokens: an Anthropic answer as a chat completion), input_tokens_details
_CACHED = pa.struct([("cached_tokens", pa.int64()), ("cache_write_tokens", pa.int64())])
_LINE = pa.schema(
    [
        ("custom_id", pa.string()),
        (
            "response",
            pa.struct(
                [
                    ("status_code", pa.int32()),
                    (
                        "body",
                        pa.struct(
                            [
                                ("object", pa.string()),
                                ("model", pa.string()),
                                (
                                    "choices",
                                    pa.list_(
                                        pa.struct(
                                            [
                                                (
                                                    "message",
                                                    pa.struct([("content", pa.string()), ("refusal", pa.string())]),
                                                ),
                                                ("finish_reason", pa.string()),
                                            ]
                                        )
                                    ),
                                ),
                                ("data", pa.list_(pa.struct([("embedding", pa.list_(pa.float32()))]))),
                                ("results", pa.list_(pa.struct([("flagged", pa.bool_())]))),  # moderations
                                (
                                    "usage",
                                    pa.struct(
                                        [(name, pa.int64()) for name in _USAGE]
                                        + [("prompt_tokens_details", _CACHED), ("input_tokens_details", _CACHED)]
                                    ),
                                ),
                                ("error", _ERROR),
                            ]
                        ),
                    ),
                ]
            ),
        ),
        ("error", _ERROR),
    ]
)


def arrow_batches(path: Path, batch_id: str, block_bytes: int = 16 << 20) -> Iterator[pa.RecordBatch]:
    if _body_object(path) in ("list", "response", "moderation"):
        # embeddings: orjson + numpy parse their floats about twice as fast as Arrow's reader, in less memory;
        # responses: the text is spread over an output list; moderations: the result is kept as JSON text
        raise NeedsPerLine()
    options = pj.ParseOptions(explicit_schema=_LINE, unexpected_field_behavior="ignore")
    try:
        reader = pj.open_json(path, read_options=pj.ReadOptions(block_size=block_bytes), parse_options=options)
        for lines in reader:
            yield _typed_results(lines, batch_id)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise NeedsPerLine() from None


def _body_object(path: Path) -> str | None:
    """The ``object`` of the first line's response body (``chat.completion``, ``list``, ``response``; a moderation
    body has none: ``moderation``)."""
    with path.open("rb") as lines:
        for raw in lines:
            if raw.strip():
                try:
                    body = (orjson.loads(raw).get("response") or {}).get("body") or {}
                    return "moderation" if "results" in body and "object" not in body else body.get("object")
                except (orjson.JSONDecodeError, AttributeError):
                    return None
    return None


def _field(array: pa.Array, *names: str) -> pa.Array:
    for name in names:
        array = pc.struct_field(array, name)
    return array


def _first(lists: pa.Array) -> pa.Array:
    """Each list's first element (null for null or empty lists)."""
    empty = pc.fill_null(pc.equal(pc.list_value_length(lists), 0), True)
    return pc.list_element(pc.if_else(empty, pa.nulls(len(lists), lists.type), lists), 0)


def _typed_results(lines: pa.RecordBatch, batch_id: str) -> pa.RecordBatch:
    n = lines.num_rows
    response, error = lines.column("response"), lines.column("error")
    body = _field(response, "body")
    if pc.any(pc.is_in(_field(body, "object"), pa.array(["response", "list"]))).as_py():
        raise NeedsPerLine()  # a file mixing shapes: see arrow_batches
    if _field(body, "results").null_count < n:
        raise NeedsPerLine()  # moderation answers
    status_code = _field(response, "status_code")
    ok = pc.and_(pc.fill_null(pc.equal(status_code, 200), False), pc.is_null(error))
    nothing = pa.nulls(n, pa.string())

    def when_ok(values: pa.Array) -> pa.Array:
        return pc.if_else(ok, values, pa.nulls(n, values.type))

    usage, choice = _field(body, "usage"), _first(_field(body, "choices"))
    fallback_code = pc.if_else(
        pc.is_null(status_code),
        pa.array(["unknown_error"] * n),
        pc.binary_join_element_wise("http_", pc.cast(status_code, pa.string()), ""),
    )
    code = pc.coalesce(_field(error, "code"), _field(body, "error", "code"), fallback_code)
    message = pc.coalesce(
        _field(error, "message"),
        _field(body, "error", "message"),
        pa.array(["no error message in the result line"] * n),
    )
    embedding = pc.if_else(
        pc.equal(_field(body, "object"), "list"),
        _field(_first(_field(body, "data")), "embedding"),
        pa.nulls(n, pa.list_(pa.float32())),
    )
    columns = {
        "custom_id": lines.column("custom_id"),
        "batch_id": pa.array([batch_id] * n, pa.string()),
        "status": pc.if_else(ok, ResultStatus.OK.value, ResultStatus.ERROR.value),
        "response_text": when_ok(pc.coalesce(_field(choice, "message", "content"), nothing)),
        "finish_reason": when_ok(_field(choice, "finish_reason")),
        "refusal": when_ok(_field(choice, "message", "refusal")),
        "embedding": when_ok(embedding),
        "model": when_ok(_field(body, "model")),
        "prompt_tokens": when_ok(pc.coalesce(_field(usage, "prompt_tokens"), _field(usage, "input_tokens"))),
        "completion_tokens": when_ok(pc.coalesce(_field(usage, "completion_tokens"), _field(usage, "output_tokens"))),
        "total_tokens": when_ok(_field(usage, "total_tokens")),
        "cached_tokens": when_ok(
            pc.coalesce(
                _field(usage, "prompt_tokens_details", "cached_tokens"),
                _field(usage, "input_tokens_details", "cached_tokens"),
            )
        ),
        "cache_write_tokens": when_ok(_field(usage, "prompt_tokens_details", "cache_write_tokens")),
        "error_code": pc.if_else(ok, nothing, code),
        "error_message": pc.if_else(ok, nothing, message),
        "http_status": status_code,
        "attempts": pa.array([1] * n, pa.int32()),  # the caller numbers the attempt
    }
    if pc.any(pc.is_null(columns["custom_id"])).as_py():
        raise ResultsUnreadable("a result line has no custom_id")
    return pa.record_batch([columns[f.name] for f in PARSED_SCHEMA], PARSED_SCHEMA)
