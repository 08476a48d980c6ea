"""Batch output and error files -> one result per request -> merged back onto the input rows.

A result is ``ok`` when the request returned HTTP 200, else ``error`` with the API's code and message.
Retryable errors (rate limits, server errors, expired lines) can be resubmitted; the latest attempt wins.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import BatchkitError
from .manifest import Manifest
from .source import open_parquet
from .storage import open_file

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
RETRYABLE_CODES = {"batch_expired", "rate_limit_exceeded", "server_error", "token_limit_exceeded"}

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
        return self.status == "error" and (self.http_status in RETRYABLE_STATUS or self.error_code in RETRYABLE_CODES)


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


def latest_results(attempts: Iterable[Iterable[Result]]) -> dict[str, Result]:
    """Combine attempts in order: a later attempt's result replaces an earlier one for the same custom_id."""
    final: dict[str, Result] = {}
    for number, results in enumerate(attempts, start=1):
        for result in results:
            result.attempts = number
            final[result.custom_id] = result
    return final


def request_lines(batch_file: str | Path, custom_ids: set[str]) -> Iterator[bytes]:
    """The original request lines for ``custom_ids`` (to resubmit them), streamed from the batch file."""
    with open_file(batch_file) as lines:
        for raw in lines:
            if raw.strip() and orjson.loads(raw)["custom_id"] in custom_ids:
                yield raw if raw.endswith(b"\n") else raw + b"\n"


def merge_with_inputs(
    manifest: Manifest, file_index: int, results: dict[str, Result], out_path: Path, columns: list[str] | None = None
) -> dict[str, int]:
    """Write every input row owned by batch file ``file_index`` with its result as Parquet (atomically).

    Rows are owned by the file whose first row starts their range, so each input row lands in exactly one
    file's output; rows the split skipped (null or empty prompt) land with status ``error``/``skipped``.

    :raises BatchkitError: when a request of the batch file has no result at all (nothing may go missing).
    """
    inputs = _owned_rows(manifest, file_index, columns)
    id_column = manifest.parameters["id_column"]
    if id_column:
        ids = pc.cast(inputs.column(id_column), pa.string()).to_pylist()
    else:
        ids = inputs.column("__custom_id").to_pylist()
        inputs = inputs.drop_columns(["__custom_id"])
    entry = manifest.files[file_index]
    missing = entry.requests - sum(1 for custom_id in ids if custom_id in results)
    if missing:
        raise BatchkitError(f"{missing} request(s) of {entry.path} have no result in the output or error files")
    skipped = {
        "batch_id": "",
        "status": "error",
        "error_code": "skipped",
        "attempts": 0,
        "error_message": "not submitted: the prompt was null or empty",
    }
    rows = [results.get(custom_id) or Result(custom_id, **skipped) for custom_id in ids]
    table = inputs
    for field in RESULT_SCHEMA:
        if field.name in table.column_names:
            table = table.drop_columns([field.name])
        values = [getattr(r, field.name) for r in rows]
        table = table.append_column(field, pa.array(values, field.type))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(out_path)
    ok = sum(1 for r in rows if r.status == "ok")
    return {"rows": len(rows), "ok": ok, "errors": len(rows) - ok}


def _owned_rows(manifest: Manifest, file_index: int, columns: list[str] | None) -> pa.Table:
    """Input rows from this file's first row up to (not including) the next file's first row."""
    id_column = manifest.parameters["id_column"]
    if columns is not None and id_column and id_column not in columns:
        columns = [*columns, id_column]  # needed to match results; kept in the output
    files = manifest.files
    start = (0, 0) if file_index == 0 else tuple(files[file_index].first_row)
    stop = tuple(files[file_index + 1].first_row) if file_index + 1 < len(files) else (len(manifest.sources), 0)
    pieces = []
    for source_index in range(start[0], min(stop[0], len(manifest.sources) - 1) + 1):
        source = manifest.sources[source_index]
        first = start[1] if source_index == start[0] else 0
        last = stop[1] if source_index == stop[0] else source["rows"]
        if last <= first:
            continue
        table = _read_rows(source["path"], first, last, columns)
        if not manifest.parameters["id_column"]:
            table = table.append_column("__custom_id", pa.array([f"{source_index}-{r}" for r in range(first, last)]))
        pieces.append(table)
    if not pieces:
        raise BatchkitError(f"batch file {files[file_index].path} owns no input rows")
    return pa.concat_tables(pieces)


def _read_rows(path: str, first: int, last: int, columns: list[str] | None) -> pa.Table:
    """Rows [first, last) of one Parquet file, reading only the row groups that hold them."""
    parquet = open_parquet(path)
    groups, offset, group_start = [], 0, None
    for index in range(parquet.metadata.num_row_groups):
        size = parquet.metadata.row_group(index).num_rows
        if offset + size > first and offset < last:
            groups.append(index)
            group_start = offset if group_start is None else group_start
        offset += size
    table = parquet.read_row_groups(groups, columns=columns)
    return table.slice(first - (group_start or 0), last - first)
