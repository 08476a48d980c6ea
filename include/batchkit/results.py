"""Batch output and error files -> one result row per request, streamed into the ledger's Parquet files.

A result is ``ok`` when the request returned HTTP 200, else ``error`` with the API's code and message.
Files are parsed in chunks of ``CHUNK_ROWS`` lines, so memory stays bounded whatever the file size.
"""

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import BatchkitError, TransientError
from .ledger import is_final, is_retryable
from .requests import ID_PREFIX
from .storage import open_file

CHUNK_ROWS = 4096

RESULT_SCHEMA = pa.schema(
    [
        ("custom_id", pa.string()),
        ("batch_id", pa.string()),
        ("status", pa.string()),
        ("response_text", pa.string()),
        ("embedding", pa.list_(pa.float32())),
        ("model", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("error_code", pa.string()),
        ("error_message", pa.string()),
        ("http_status", pa.int32()),
        ("attempts", pa.int32()),
    ]
)
LEDGER_SCHEMA = RESULT_SCHEMA.append(pa.field("fingerprint", pa.string())).append(pa.field("final", pa.bool_()))
LEDGER_SCHEMA = LEDGER_SCHEMA.append(pa.field("recorded_at", pa.float64()))


@dataclass
class Result:
    custom_id: str
    batch_id: str
    status: str
    http_status: int | None = None
    response_text: str | None = None
    embedding: list[float] | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 1

    @property
    def retryable(self) -> bool:
        return is_retryable(self.status, self.http_status, self.error_code)

    @property
    def final(self) -> bool:
        return is_final(self.status, self.http_status, self.error_code)


def parse_lines(path: Path, batch_id: str) -> Iterator[Result]:
    """Parse one output or error file, streaming line by line."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if raw.strip():
                try:
                    yield parse_line(orjson.loads(raw), batch_id)
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    raise BatchkitError(f"{path}: line {number} is not a valid batch result ({exc})") from None


def parse_line(line: dict[str, Any], batch_id: str) -> Result:
    """One result line: ``{id, custom_id, response: {status_code, request_id, body}, error}``."""
    response, error = line.get("response"), line.get("error")
    status_code = response.get("status_code") if response else None
    body = (response or {}).get("body") or {}
    if status_code == 200 and not error:
        usage = body.get("usage") or {}
        prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
        completion = usage.get("completion_tokens", usage.get("output_tokens"))
        return Result(
            custom_id=line["custom_id"],
            batch_id=batch_id,
            status="ok",
            http_status=200,
            response_text=_response_text(body),
            embedding=_embedding(body),
            model=body.get("model"),
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=usage.get("total_tokens"),
        )
    detail = error or body.get("error") or {}
    return Result(
        custom_id=line["custom_id"],
        batch_id=batch_id,
        status="error",
        http_status=status_code,
        error_code=detail.get("code") or (f"http_{status_code}" if status_code else "unknown_error"),
        error_message=detail.get("message") or "no error message in the result line",
    )


def _response_text(body: dict[str, Any]) -> str | None:
    if "choices" in body:
        choices = body["choices"] or [{}]
        return (choices[0].get("message") or {}).get("content")
    if body.get("object") == "response":
        texts = [
            part.get("text", "")
            for item in body.get("output") or []
            if item.get("type") == "message"
            for part in item.get("content") or []
            if part.get("type") == "output_text"
        ]
        return "".join(texts)
    return None


def _embedding(body: dict[str, Any]) -> list[float] | None:
    data = body.get("data") if body.get("object") == "list" else None
    return data[0].get("embedding") if data else None


def request_lines(batch_file: str | Path, custom_ids: set[str]) -> Iterator[bytes]:
    """The original request lines for ``custom_ids`` (to resubmit them), streamed from the batch file."""
    with open_file(batch_file) as lines:
        for raw in lines:
            if raw.strip() and orjson.loads(raw)["custom_id"] in custom_ids:
                yield raw if raw.endswith(b"\n") else raw + b"\n"


def fingerprints(batch_file: str | Path) -> dict[str, str]:
    """``custom_id -> fingerprint`` of a batch input file written by the splitter (see ``ledger.fingerprint``)."""
    from .ledger import fingerprint

    found = {}
    with open_file(batch_file) as lines:
        for raw in lines:
            if raw.strip():
                line = raw if raw.endswith(b"\n") else raw + b"\n"
                custom_id = orjson.loads(line)["custom_id"]
                found[custom_id] = fingerprint(line[len(ID_PREFIX) + len(orjson.dumps(custom_id)) :])
    return found


def write_results(
    results: Iterable[Result], fingerprints: dict[str, str], attempt: int, out: Path, expected: int | None = None
) -> int:
    """Stream ``results`` (one batch's) into a ledger Parquet file at ``out``, in bounded memory.

    :param fingerprints: the batch's requests (``fingerprints``); a result for another custom_id is refused.
    :param expected: the batch's request count; fewer or more results than that are refused (nothing may go
        missing silently).
    :returns: the number of results written.
    """
    recorded_at, written = time.time(), 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(out, LEDGER_SCHEMA) as writer:
        for chunk in _chunks(results, CHUNK_ROWS):
            for result in chunk:
                result.attempts = attempt
            unknown = [r.custom_id for r in chunk if r.custom_id not in fingerprints]
            if unknown:
                raise BatchkitError(f"results name custom_id {unknown[0]!r}, which is not among the batch's requests")
            columns = {f.name: [getattr(r, f.name) for r in chunk] for f in RESULT_SCHEMA}
            columns["fingerprint"] = [fingerprints[r.custom_id] for r in chunk]
            columns["final"] = [r.final for r in chunk]
            columns["recorded_at"] = [recorded_at] * len(chunk)
            writer.write_batch(
                pa.record_batch([pa.array(columns[f.name], f.type) for f in LEDGER_SCHEMA], LEDGER_SCHEMA)
            )
            written += len(chunk)
    if expected is not None and written != expected:
        raise TransientError(f"the batch reports {expected} requests but its files hold {written} results")
    return written


def _chunks(items: Iterable[Result], size: int) -> Iterator[list[Result]]:
    chunk: list[Result] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
