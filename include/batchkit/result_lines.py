"""Batch output and error files parsed line by line (orjson), for the shapes Arrow's JSON reader cannot type:
embeddings (orjson parses their floats about twice as fast), the responses endpoint's output list and unusual
error shapes.

A large file is parsed by two processes: this one reads the first part while a child process
(``python -m batchkit.result_lines``) reads the rest into an Arrow IPC file beside it; the batches then come
out in file order, so the result is the same as one process's. Embeddings are copied into float32 buffers as
each line is parsed: a chunk never holds Python floats.
"""

import array
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from .answers import ResultStatus
from .errors import HelperProcessFailed, ResultsUnreadable
from .ledger import is_retryable
from .result_schema import RESULT_SCHEMA

CHUNK_ROWS = 1024  # lines a record batch
PARALLEL_MIN_BYTES = 64 << 20  # smaller files are parsed by this process alone (a child costs ~0.5 s to start)
PARENT_SHARE = 0.45  # of a large file parsed here; the child takes the rest (this process also writes the ledger)
UNREADABLE_EXIT = 3  # the child's exit code for a line that is not a valid result (its message on stderr)


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


def line_batches(path: Path, batch_id: str) -> Iterator[pa.RecordBatch]:
    """The results in one file as ``RESULT_SCHEMA`` record batches, in file order."""
    size = path.stat().st_size
    if size < PARALLEL_MIN_BYTES or len(os.sched_getaffinity(0)) < 2:
        yield from _batches(path, batch_id, 0, size)
        return
    middle = _line_start(path, int(size * PARENT_SHARE))
    with tempfile.TemporaryDirectory(prefix=".parse-", dir=path.parent) as scratch:
        tail, log = Path(scratch) / "tail.arrow", Path(scratch) / "stderr"
        command = [sys.executable, "-m", __name__, str(path), batch_id, str(middle), str(size), str(tail)]
        with log.open("wb") as stderr:
            child = subprocess.Popen(command, env=_child_env(), stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            yield from _batches(path, batch_id, 0, middle)
            if child.wait() != 0:
                raise _child_failure(path, log, child.returncode)
            with pa.OSFile(str(tail)) as source, pa.ipc.open_stream(source) as reader:
                yield from reader
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


def parse_lines(path: Path, batch_id: str, start: int = 0, end: int | None = None) -> Iterator[Result]:
    """Parse the lines of one output or error file that start in bytes ``[start, end)``, streaming."""
    with path.open("rb") as lines:
        lines.seek(start)
        offset = start
        while end is None or offset < end:
            raw = lines.readline()
            if not raw:
                return
            if raw.strip():
                try:
                    yield parse_line(orjson.loads(raw), batch_id)
                except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                    number = _count_lines(path, offset) + 1
                    raise ResultsUnreadable(f"{path}: line {number} is not a valid batch result ({exc})") from None
            offset += len(raw)


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
        return "".join(part.get("text", "") for part in _output_parts(body, "output_text"))
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
        return "".join(part.get("refusal") or "" for part in _output_parts(body, "refusal")) or None
    return None


def _output_parts(body: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    """The content parts of type ``kind`` in a response's output messages."""
    for item in body.get("output") or []:
        if item.get("type") == "message":
            yield from (part for part in item.get("content") or [] if part.get("type") == kind)


def _embedding(body: dict[str, Any]) -> list[float] | None:
    data = body.get("data") if body.get("object") == "list" else None
    return data[0].get("embedding") if data else None


def results_batch(results: list[Result], embeddings: pa.Array | None = None) -> pa.RecordBatch:
    """Result objects (a chunk) as one ``RESULT_SCHEMA`` record batch (``embeddings``: their vectors, if taken)."""
    if embeddings is None:
        embeddings = Vectors.of(r.embedding for r in results)
    columns = [
        embeddings if f.name == "embedding" else pa.array([getattr(r, f.name) for r in results], f.type)
        for f in RESULT_SCHEMA
    ]
    return pa.record_batch(columns, RESULT_SCHEMA)


class Vectors:
    """A float32 list column built a vector at a time, each converted in C as it is added."""

    def __init__(self) -> None:
        self.values = array.array("f")
        self.offsets = [0]
        self.missing: list[bool] = []

    @classmethod
    def of(cls, vectors: Iterable[list[float] | None]) -> pa.Array:
        column = cls()
        for vector in vectors:
            column.add(vector)
        return column.array()

    def add(self, vector: list[float] | None) -> None:
        if vector is not None:
            self.values.fromlist(vector)
        self.offsets.append(len(self.values))
        self.missing.append(vector is None)

    def array(self) -> pa.Array:
        if all(self.missing):
            return pa.nulls(len(self.missing), pa.list_(pa.float32()))
        values = pa.py_buffer(self.values)
        return pa.ListArray.from_arrays(
            pa.array(self.offsets, pa.int32()),
            pa.Array.from_buffers(pa.float32(), len(self.values), [None, values]),
            mask=pa.array(self.missing),
        )


def _batches(path: Path, batch_id: str, start: int, end: int) -> Iterator[pa.RecordBatch]:
    chunk, vectors = [], Vectors()
    for result in parse_lines(path, batch_id, start, end):
        vectors.add(result.embedding)
        result.embedding = None
        chunk.append(result)
        if len(chunk) == CHUNK_ROWS:
            yield results_batch(chunk, vectors.array())
            chunk, vectors = [], Vectors()
    if chunk:
        yield results_batch(chunk, vectors.array())


def _line_start(path: Path, offset: int) -> int:
    """The offset of the first line starting at or after ``offset``."""
    with path.open("rb") as lines:
        lines.seek(max(0, offset - 1))
        lines.readline()  # the rest of the line holding offset - 1 (nothing if that byte ends a line)
        return lines.tell()


def _count_lines(path: Path, end: int) -> int:
    """How many lines end before byte ``end`` (only for error messages)."""
    with path.open("rb") as lines:
        return sum(block.count(b"\n") for block in iter(lambda: lines.read(min(1 << 20, end - lines.tell())), b""))


def _child_env() -> dict[str, str]:
    """This process's environment, with ``batchkit`` importable where it was imported from."""
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def _child_failure(path: Path, log: Path, code: int) -> ResultsUnreadable | HelperProcessFailed:
    said = log.read_text(errors="replace").strip()
    if code == UNREADABLE_EXIT:
        return ResultsUnreadable(said)
    last = said.splitlines()[-1] if said else "nothing on stderr"
    return HelperProcessFailed(f"the process parsing the second part of {path} failed (exit code {code}: {last})")


def _write_tail(path: Path, batch_id: str, start: int, end: int, out: Path) -> None:
    """The child's half: its batches into an Arrow IPC stream at ``out``; it stops if its parent is gone."""
    parent = os.getppid()
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, RESULT_SCHEMA) as writer:
        for batch in _batches(path, batch_id, start, end):
            if os.getppid() != parent:
                raise SystemExit("the parsing process's parent is gone")
            writer.write_batch(batch)


if __name__ == "__main__":
    source, batch, first, last, target = sys.argv[1:6]
    try:
        _write_tail(Path(source), batch, int(first), int(last), Path(target))
    except ResultsUnreadable as exc:
        print(exc, file=sys.stderr)
        sys.exit(UNREADABLE_EXIT)
