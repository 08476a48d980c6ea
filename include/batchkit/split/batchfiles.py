"""Where a split's output goes: the batch files (cut before any limit is crossed, hashed and written on a
background thread) and the staged rows of the partition."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ..results.arrow_numpy import strings
from .lines import RequestLines
from .manifest import BatchFileEntry
from .requests import RequestShape
from .source import SourceFile

if TYPE_CHECKING:
    from .split_config import SplitConfig

SKIPPED_COLUMN = "__skipped"  # in rows.parquet with image columns: why the row was not sent (null: it was)
MAX_GAPS = 64  # stretches of a file's rows-file span the manifest lists at most (more: readers use the file)
MORE_FILES = (
    "raise Airflow's [core] max_map_length (AIRFLOW__CORE__MAX_MAP_LENGTH, on every component) or make the "
    "partitions smaller; nothing was submitted"
)


class Background:
    """One task at a time on its own thread, in submission order, while the caller prepares the next one."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: Future | None = None

    def submit(self, task: Callable[..., object], *args: object) -> None:
        self.wait()
        self._pending = self._pool.submit(task, *args)

    def wait(self) -> None:
        """Wait for the task in flight; its error is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class RowsWriter:
    """Writes the partition's rows as read (kept columns + ``__custom_id`` + ``__fingerprint``, + ``__skipped``:
    why a row was not sent, with ``reasons``) to Parquet, on a background thread (Parquet encoding releases the
    GIL)."""

    def __init__(self, path: Path | BinaryIO, schema: pa.Schema | None, keep: list[str], reasons: bool = False) -> None:
        import pyarrow.parquet as pq

        fields = [schema.field(name) for name in keep] if schema is not None else []
        self.keep = keep
        extra = [(SKIPPED_COLUMN, pa.string())] if reasons else []
        self.schema = pa.schema([*fields, ("__custom_id", pa.string()), ("__fingerprint", pa.string()), *extra])
        self._writer = pq.ParquetWriter(path, self.schema)
        self._io = Background("batchkit-rows")

    def write(
        self, batch: pa.RecordBatch, ids: pa.Array, prints: list[str | None], skipped: list[str | None] | None = None
    ) -> None:
        columns = [batch.column(name) for name in self.keep]
        columns += [ids.cast(pa.string()), strings(prints)]
        if SKIPPED_COLUMN in self.schema.names:
            columns.append(strings(skipped or [None] * batch.num_rows))
        self._io.submit(self._writer.write_batch, pa.record_batch(columns, schema=self.schema))

    def close(self) -> None:
        self._io.wait()
        self._io.shutdown()
        self._writer.close()

    def abandon(self) -> None:
        """Stop after the write in flight, if any (the split failed; the file is thrown away)."""
        self._io.shutdown()


class FileWriter:
    """Writes request lines into numbered files, starting a new file before any limit is crossed."""

    def __init__(
        self, directory: Path, shape: RequestShape, config: SplitConfig, on_file: Callable[[Path], None] | None
    ) -> None:
        self.directory, self.shape, self.config, self.on_file = directory, shape, config, on_file
        self.entries: list[BatchFileEntry] = []
        self._handle: BinaryIO | None = None
        self._requests = self._bytes = self._tokens = 0
        self._io = Background("batchkit-writer")

    def write_rows(
        self,
        file: SourceFile,
        start: int,
        rows: np.ndarray,
        lines: RequestLines,
        estimates: np.ndarray,
        positions: np.ndarray,
        ranks: np.ndarray,
    ) -> None:
        """Append one record batch's request ``lines`` (of source ``rows``), cutting files where the next line
        would cross a limit. ``positions``: each line's row in the rows file; ``ranks``: its row's rank among the
        rows with a prompt (see ``_place``)."""
        offsets, data = lines.buffers()
        sizes = np.diff(offsets)
        max_tokens = self.config.max_tokens or 1 << 62
        i = 0
        while i < len(sizes):
            room = 0 if self._handle is None else self.config.max_requests - self._requests
            window = slice(i, i + min(room, len(sizes) - i))
            fit = min(
                room,
                int(np.searchsorted(np.cumsum(sizes[window]), self.config.max_bytes - self._bytes, side="right")),
                int(np.searchsorted(np.cumsum(estimates[window]), max_tokens - self._tokens, side="right")),
            )
            if fit == 0:
                self._check_fits(file, start + int(rows[i]), int(sizes[i]), int(estimates[i]))
                self._rotate(file.index, start + int(rows[i]))
                continue
            chunk = data[offsets[i] : offsets[i + fit]]
            self._write(chunk)
            self._place(positions[i : i + fit], ranks[i : i + fit])
            self._requests += fit
            self._bytes += len(chunk)
            self._tokens += int(estimates[i : i + fit].sum())
            i += fit
            self._last = (file.index, start + int(rows[i - 1]))

    def _place(self, positions: np.ndarray, ranks: np.ndarray) -> None:
        """Note where the file's lines sit in the rows file (before counting them): its span, and the stretches of
        it whose rows are not in the file because the ledger answered them (a gap between two of its lines that
        holds a row with a prompt; a row skipped for having none is told apart by its null fingerprint)."""
        if self._requests == 0:  # the file's first lines
            self._span_start, self._gaps = int(positions[0]), []
        else:
            positions, ranks = np.r_[self._last_position, positions], np.r_[self._last_rank, ranks]
        if self._gaps is not None:
            gaps = np.flatnonzero(np.diff(ranks) > 1)[: MAX_GAPS + 1 - len(self._gaps)]
            self._gaps += [[int(positions[k]) + 1, int(positions[k + 1])] for k in gaps]
            self._gaps = None if len(self._gaps) > MAX_GAPS else self._gaps
        self._last_position, self._last_rank = int(positions[-1]), int(ranks[-1])

    def _check_fits(self, file: SourceFile, row: int, size: int, estimate: int) -> None:
        if size > self.config.max_bytes:
            raise InputError(
                f"{file.path}: row {row}: its request alone is {size:,} bytes, over the "
                f"{self.config.max_bytes:,}-byte limit per batch file"
            )
        if self.config.max_tokens and estimate > self.config.max_tokens:
            raise InputError(
                f"{file.path}: row {row}: its request alone is about {estimate:,} tokens, over the "
                f"--max-tokens budget of {self.config.max_tokens:,}"
            )

    def _rotate(self, source_index: int, row: int) -> None:
        if self.config.max_files is not None and len(self.entries) >= self.config.max_files:
            raise InputError(
                f"the partition needs more than {self.config.max_files:,} batch files (reached at row {row} of "
                f"source file {source_index}); {MORE_FILES}"
            )
        self.close()
        name = f"batch-{len(self.entries):05d}.jsonl"
        self._handle = open(self.directory / name, "wb", buffering=1 << 20)  # noqa: SIM115 (closed in close())
        self._hash = hashlib.sha256()
        self._requests = self._bytes = self._tokens = 0
        self._first = (source_index, row)
        self.entries.append(BatchFileEntry(name, 0, 0, 0, "", self.shape.model, self.shape.endpoint, [], []))

    def shutdown(self) -> None:
        self._io.shutdown()

    def _write(self, chunk: np.ndarray) -> None:
        """Hash and write on a background thread (both release the GIL) while the next lines are built."""
        self._io.submit(self._write_now, self._handle, self._hash, chunk)

    @staticmethod
    def _write_now(handle: BinaryIO, digest: hashlib._Hash, chunk: np.ndarray) -> None:
        digest.update(chunk)
        handle.write(chunk)

    def close(self) -> None:
        self._io.wait()
        if self._handle is None:
            return
        self._handle.close()
        self._handle = None
        entry = self.entries[-1]
        entry.requests, entry.bytes, entry.estimated_tokens = self._requests, self._bytes, self._tokens
        entry.sha256, entry.first_row, entry.last_row = self._hash.hexdigest(), list(self._first), list(self._last)
        entry.rows_span, entry.rows_left_out = [self._span_start, self._last_position + 1], self._gaps
        if self.on_file is not None:
            self.on_file(self.directory / entry.path)
