"""Batch input validation as the Batch API does it: the whole file, before anything runs."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .config import EmulatorConfig
from .errors import model_not_found

MAX_REPORTED_ERRORS = 100


@dataclass
class Validation:
    total: int = 0
    tokens: int = 0  # estimated input tokens (bytes / 4), what the enqueued-token limit counts
    model: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, code: str, message: str, line: int | None = None, param: str | None = None) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"code": code, "message": message, "param": param, "line": line})


def validate_input(path: Path, endpoint: str, config: EmulatorConfig, urls: frozenset[str] | None = None) -> Validation:
    """Check every line of a batch input file; stream it, never load it whole. A line's ``url`` must be one of
    ``urls`` (default: the batch's ``endpoint``)."""
    urls = urls or frozenset({endpoint})
    result = Validation()
    size = path.stat().st_size
    if size > config.max_batch_input_bytes:
        result.error(
            "file_too_large",
            f"The input file is {size:,} bytes; batch input files may be at most "
            f"{config.max_batch_input_bytes:,} bytes.",
            param="input_file_id",
        )
        return result
    seen: set[str] = set()
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            result.total += 1
            result.tokens += len(raw) // 4 + 1
            _check_line(raw, number, endpoint, urls, seen, result)
    if result.total == 0:
        result.error("empty_file", "The input file contains no requests.", param="input_file_id")
    elif result.total > config.max_requests_per_batch:
        result.error(
            "too_many_requests",
            f"The input file has {result.total:,} requests; a batch may have at most "
            f"{config.max_requests_per_batch:,}.",
            param="input_file_id",
        )
    if result.model and not result.errors and not config.accepts_model(result.model):
        result.error("model_not_found", model_not_found(result.model).message, param="body.model")
    return result


def _check_line(
    raw: bytes, number: int, endpoint: str, urls: frozenset[str], seen: set[str], result: Validation
) -> None:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        result.error("invalid_json_line", f"This line is not parseable as valid JSON (line {number}).", number)
        return
    if not isinstance(line, dict):
        result.error("invalid_json_line", "Each line must be a JSON object.", number)
        return
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        result.error("missing_required_parameter", "Missing required parameter: 'custom_id'.", number, "custom_id")
    elif custom_id in seen:
        result.error(
            "duplicate_custom_id",
            f"The custom_id '{custom_id}' is used more than once in this file; custom_id values must be unique.",
            number,
            "custom_id",
        )
    else:
        seen.add(custom_id)
    if line.get("method") != "POST":
        result.error("invalid_method", "Only the POST method is supported.", number, "method")
    if line.get("url") not in urls:
        result.error(
            "invalid_url", f"The URL '{line.get('url')}' does not match the batch endpoint '{endpoint}'.", number, "url"
        )
    body = line.get("body")
    if not isinstance(body, dict):
        result.error("missing_required_parameter", "Missing required parameter: 'body'.", number, "body")
        return
    model = body.get("model")
    if not isinstance(model, str) or not model:
        result.error("missing_required_parameter", "Missing required parameter: 'body.model'.", number, "body.model")
    elif result.model is None:
        result.model = model
    elif model != result.model:
        result.error(
            "mismatched_model",
            f"The model '{model}' differs from '{result.model}' used earlier in the file; "
            "a batch input file must use one model.",
            number,
            "body.model",
        )
