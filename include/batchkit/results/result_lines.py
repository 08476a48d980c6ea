"""Batch output and error files parsed line by line, for the shapes Arrow's JSON reader cannot type:
embeddings, the responses endpoint's output list and unusual error shapes (``batchkit.results.result_line``: each
embedding read by simdjson straight into a buffer, the rest by orjson).

A chunk holds its vectors in one float32 buffer, never as Python floats: a 50,000 x 1,536-d output file parses
in about 3.5 s on one core, where orjson's Python floats took 6.5 s.
"""

import array
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import orjson
import pyarrow as pa
import simdjson

from ..errors import ResultsUnreadable
from .answers import ResultStatus
from .result_line import Result, parse_line, typed
from .result_schema import PARSED_SCHEMA

T = TypeVar("T")
CHUNK_ROWS = 1024  # lines a record batch
READ_BUFFER = 1 << 20  # lines of ~30 KB (embeddings) read 4x faster than through the default 8 KB buffer


def line_batches(path: Path, batch_id: str) -> Iterator[pa.RecordBatch]:
    """The results in one file as ``PARSED_SCHEMA`` record batches of ``CHUNK_ROWS`` lines, in file order."""
    chunk, vectors, parser = [], Vectors(), simdjson.Parser()
    for result, vector in _parsed(path, lambda raw: typed(parser, raw, batch_id)):
        if result.status != ResultStatus.OK or vector is None:
            vectors.add(result.embedding)
        else:
            vectors.add_float64(vector)
        result.embedding = None
        chunk.append(result)
        if len(chunk) == CHUNK_ROWS:
            yield results_batch(chunk, vectors.array())
            chunk, vectors = [], Vectors()
    if chunk:
        yield results_batch(chunk, vectors.array())


def parse_lines(path: Path, batch_id: str) -> Iterator[Result]:
    """Parse one output or error file, streaming line by line."""
    return _parsed(path, lambda raw: parse_line(orjson.loads(raw), batch_id))


def _parsed(path: Path, parse: Callable[[bytes], T]) -> Iterator[T]:
    """``parse`` of each non-blank line; a line it cannot parse is named."""
    with path.open("rb", buffering=READ_BUFFER) as lines:
        for number, raw in enumerate(lines, start=1):
            if raw.strip():
                try:
                    parsed = parse(raw)
                except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                    raise ResultsUnreadable(f"{path}: line {number} is not a valid batch result ({exc})") from None
                yield parsed


def results_batch(results: list[Result], embeddings: pa.Array | None = None) -> pa.RecordBatch:
    """Result objects (a chunk) as one ``PARSED_SCHEMA`` record batch (``embeddings``: their vectors, if taken)."""
    if embeddings is None:
        embeddings = Vectors.of(r.embedding for r in results)
    columns = [
        embeddings if f.name == "embedding" else pa.array([getattr(r, f.name) for r in results], f.type)
        for f in PARSED_SCHEMA
    ]
    return pa.record_batch(columns, PARSED_SCHEMA)


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

    def add_float64(self, vector: bytes) -> None:
        """A vector given as the bytes of float64 values."""
        self.values.frombytes(np.frombuffer(vector, np.float64).astype(np.float32).tobytes())
        self.offsets.append(len(self.values))
        self.missing.append(False)

    def array(self) -> pa.Array:
        if all(self.missing):
            return pa.nulls(len(self.missing), pa.list_(pa.float32()))
        values = pa.py_buffer(self.values)
        return pa.ListArray.from_arrays(
            pa.array(self.offsets, pa.int32()),
            pa.Array.from_buffers(pa.float32(), len(self.values), [None, values]),
            mask=pa.array(self.missing),
        )
