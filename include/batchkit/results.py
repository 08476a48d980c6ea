"""Batch output and error files -> one result row per request, streamed into the ledger's Parquet files.

A result is ``ok`` when the request returned HTTP 200, else ``error`` with the API's code and message; with an output
schema, a 200 answer that does not follow it is ``invalid_output`` (see ``batchkit.structured``).
Chat answers are read in blocks by Arrow's JSON reader (C++, no per-row Python objects). Embeddings (orjson and
numpy parse their floats about twice as fast, into float32 lists), the responses endpoint's output list and
unusual error shapes are parsed line by line in chunks of ``CHUNK_ROWS``. Either way memory stays bounded
whatever the file size.
"""

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .answers import ResultStatus
from .arrow_results import NeedsPerLine, arrow_batches
from .batch_api import RETRYABLE_HTTP_STATUS, UNANSWERED_CODES
from .errors import BatchkitError, TransientError
from .ledger import is_retryable
from .result_schema import LEDGER_SCHEMA, RESULT_SCHEMA
from .structured import INVALID, AnswerCheck

CHUNK_ROWS = 1024  # per-line parsing: an embeddings chunk holds ~1,500 Python floats a line until converted


@dataclass
class Result:
    custom_id: str
    batch_id: str
    status: str
    http_status: int | None = None
    response_text: str | None = None
    finish_reason: str | None = None
    refusal: str | None = None
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
            status=ResultStatus.OK.value,
            http_status=200,
            response_text=_response_text(body),
            finish_reason=_finish_reason(body),
            refusal=_refusal(body),
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
        status=ResultStatus.ERROR.value,
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


def _finish_reason(body: dict[str, Any]) -> str | None:
    """Why generation stopped: chat's ``finish_reason``; a response cut at ``max_output_tokens`` is ``length``."""
    if "choices" in body:
        return ((body["choices"] or [{}])[0]).get("finish_reason")
    if body.get("object") == "response":
        if body.get("status") != "incomplete":
            return "stop"
        reason = (body.get("incomplete_details") or {}).get("reason")
        return "length" if reason == "max_output_tokens" else reason
    return None


def _refusal(body: dict[str, Any]) -> str | None:
    if "choices" in body:
        return (((body["choices"] or [{}])[0]).get("message") or {}).get("refusal")
    if body.get("object") == "response":
        refusals = [
            part.get("refusal") or ""
            for item in body.get("output") or []
            if item.get("type") == "message"
            for part in item.get("content") or []
            if part.get("type") == "refusal"
        ]
        return "".join(refusals) or None
    return None


def _embedding(body: dict[str, Any]) -> list[float] | None:
    data = body.get("data") if body.get("object") == "list" else None
    return data[0].get("embedding") if data else None


def write_results(
    source: Callable[[bool], Iterable[pa.RecordBatch]],
    fingerprints: dict[str, str],
    attempt: int,
    out: Path,
    expected: int | None = None,
    check: AnswerCheck | None = None,
) -> int:
    """Stream one batch's results into a ledger Parquet file at ``out``, in bounded memory.

    :param source: ``source(per_line)`` yields the results as ``RESULT_SCHEMA`` record batches
        (``result_batches``); called again with ``per_line=True`` when Arrow's reader cannot type a file.
    :param fingerprints: the batch's requests (``batch_inputs.fingerprints``); a result for another custom_id is refused.
    :param check: the output schema's check (structured outputs): answers failing it become ``invalid_output``.
    :param expected: the batch's request count; fewer or more results than that are refused (nothing may go
        missing silently).
    :returns: the number of results written.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        written = _write(source(False), fingerprints, attempt, out, check)
    except NeedsPerLine:
        written = _write(source(True), fingerprints, attempt, out, check)
    if expected is not None and written != expected:
        raise TransientError(f"the batch reports {expected} requests but its files hold {written} results")
    return written


def _write(
    batches: Iterable[pa.RecordBatch], fingerprints: dict[str, str], attempt: int, out: Path, check: AnswerCheck | None
) -> int:
    recorded_at, written = time.time(), 0
    with pq.ParquetWriter(out, LEDGER_SCHEMA) as writer:
        for batch in batches:
            ids = batch.column("custom_id").to_pylist()
            prints = [fingerprints.get(custom_id) for custom_id in ids]
            if None in prints:
                unknown = ids[prints.index(None)]
                raise BatchkitError(f"results name custom_id {unknown!r}, which is not among the batch's requests")
            columns = {name: batch.column(name) for name in RESULT_SCHEMA.names}
            if check is not None:
                columns.update(_checked(columns, check))
            # final: ok, or an error sending the same body again would repeat (see batchkit.ledger)
            ok = pc.equal(columns["status"], ResultStatus.OK.value)
            retry_later = pc.or_(
                pc.is_in(columns["http_status"], pa.array(sorted(RETRYABLE_HTTP_STATUS), pa.int32())),
                pc.is_in(columns["error_code"], pa.array(sorted(UNANSWERED_CODES))),
            )
            n = batch.num_rows
            columns |= {
                "attempts": pa.array([attempt] * n, pa.int32()),
                "fingerprint": pa.array(prints, pa.string()),
                "final": pc.or_(ok, pc.invert(pc.fill_null(retry_later, False))),
                "recorded_at": pa.array([recorded_at] * n, pa.float64()),
            }
            writer.write_batch(pa.record_batch([columns[f.name] for f in LEDGER_SCHEMA], LEDGER_SCHEMA))
            written += n
    return written


def _checked(columns: dict[str, pa.Array], check: AnswerCheck) -> dict[str, pa.Array]:
    """Mark 200 answers that do not follow the output schema ``invalid_output``, with why (the text is kept)."""
    status, code, message = (columns[n].to_pylist() for n in ("status", "error_code", "error_message"))
    texts, reasons, refusals = (columns[n].to_pylist() for n in ("response_text", "finish_reason", "refusal"))
    for i, state in enumerate(status):
        if state == ResultStatus.OK and (problem := check.problem(texts[i], reasons[i], refusals[i])):
            status[i], (code[i], message[i]) = INVALID, problem
    return {
        "status": pa.array(status, pa.string()),
        "error_code": pa.array(code, pa.string()),
        "error_message": pa.array(message, pa.string()),
    }


def result_batches(paths: list[Path], batch_id: str, per_line: bool = False) -> Iterator[pa.RecordBatch]:
    """The results in ``paths`` (output and error files of one batch) as ``RESULT_SCHEMA`` record batches."""
    for path in paths:
        if per_line:
            for chunk in _chunks(parse_lines(path, batch_id), CHUNK_ROWS):
                yield results_batch(chunk)
        else:
            yield from arrow_batches(path, batch_id)


def results_batch(results: list[Result]) -> pa.RecordBatch:
    """Result objects (a chunk) as one ``RESULT_SCHEMA`` record batch."""
    columns = [
        _vectors([r.embedding for r in results])
        if f.name == "embedding"
        else pa.array([getattr(r, f.name) for r in results], f.type)
        for f in RESULT_SCHEMA
    ]
    return pa.record_batch(columns, RESULT_SCHEMA)


def _vectors(vectors: list[list[float] | None]) -> pa.Array:
    """Embeddings as a float32 list column, converted in C through one numpy buffer (not float by float)."""
    present = [v for v in vectors if v is not None]
    if not present:
        return pa.nulls(len(vectors), pa.list_(pa.float32()))
    values = np.concatenate([np.asarray(v, np.float32) for v in present])
    sizes = np.array([0 if v is None else len(v) for v in vectors], np.int32)
    offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int32)]).astype(np.int32)
    mask = pa.array([v is None for v in vectors])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), mask=mask)


def from_results(results: list[Result]) -> Callable[[bool], list[pa.RecordBatch]]:
    """A ``write_results`` source for results already in memory (e.g. synthesised for a refused batch)."""
    return lambda per_line: [results_batch(results)] if results else []


def _chunks(items: Iterable[Result], size: int) -> Iterator[list[Result]]:
    chunk: list[Result] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
