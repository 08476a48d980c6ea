"""Parquet sources: a file, a partition directory or a glob, read as a stream of record batches."""

import contextlib
import glob
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError
from ..storage import is_remote, open_file, url_to_fs

READ_BATCH_ROWS = 4096  # small batches keep peak memory low; per-batch overhead stays negligible
WIDE_BATCH_BYTES = 32 << 20  # a batch's share of wide columns (inline images): a few batches are in flight at once


@dataclass(frozen=True)
class SourceFile:
    """One Parquet file of a partition, with its position in the sorted file list."""

    index: int
    path: str
    rows: int


def resolve_files(source: str) -> list[str]:
    """List the Parquet files of ``source`` in a stable (sorted) order.

    ``source`` is a local path or an fsspec URL such as ``s3://bucket/table/dt=2026-11-24/`` (credentials and
    ``AWS_ENDPOINT_URL`` come from the environment unless a filesystem was registered with
    ``storage.use_filesystem``). A directory is searched recursively for ``*.parquet``
    files, skipping hidden and ``_``-prefixed entries (``_SUCCESS``, ``.crc``) as Spark and Hive writers do.
    """
    if is_remote(source):
        return _resolve_remote(source)
    path = Path(source)
    if path.is_file():
        return [str(path.resolve())]
    if path.is_dir():
        found = [
            str(Path(root, name).resolve())
            for root, dirs, names in os.walk(path)
            for name in names
            if name.endswith(".parquet") and not name.startswith((".", "_"))
            if not any(part.startswith((".", "_")) for part in Path(root).relative_to(path).parts)
        ]
        return sorted(found)
    if glob.has_magic(source):
        return sorted(str(Path(p).resolve()) for p in glob.glob(source, recursive=True) if Path(p).is_file())
    raise InputError(
        f"source {source!r} does not exist (expected a Parquet file, a directory of Parquet files or a glob)"
    )


def _resolve_remote(source: str) -> list[str]:
    protocol = source.split("://", 1)[0]
    try:
        fs, root = url_to_fs(source)
        if glob.has_magic(root):
            found = fs.glob(root)
        elif fs.isfile(root):
            found = [root]
        elif fs.isdir(root):
            base = root.rstrip("/")
            found = [
                p
                for p in fs.find(root)
                if p.endswith(".parquet")
                and not any(part.startswith((".", "_")) for part in p[len(base) :].split("/") if part)
            ]
        else:
            found = None
    except PermissionError as exc:
        raise InputError(f"access to {source} was denied ({exc}); check the credentials") from None
    except (FileNotFoundError, OSError) as exc:
        raise InputError(f"cannot list {source}: {exc}") from None
    if found is None:
        raise InputError(f"source {source!r} does not exist (no such object or prefix)")
    return sorted(p if "://" in p else f"{protocol}://{p}" for p in found)  # http(s) paths keep their protocol


def open_parquet(path: str, **options: object) -> pq.ParquetFile:
    """A Parquet file on local disk or object storage, read in ranges (never downloaded whole), without Arrow's
    pre-buffering (it reads ahead every row group an ``iter_batches`` visits) and streaming each column chunk."""
    options.setdefault("pre_buffer", False)
    options.setdefault("buffer_size", 1 << 20)
    if not is_remote(path):
        return pq.ParquetFile(path, **options)
    return pq.ParquetFile(open_file(path, "rb", block_size=8 << 20), **options)


def uncompressed_bytes(file: pq.ParquetFile) -> int:
    """The size of ``file``'s data once decoded, from its footer."""
    metadata = file.metadata
    return sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))


def batch_rows(file: pq.ParquetFile, batch_bytes: int, most: int = 65_536) -> int:
    """How many rows of ``file`` make a read batch of about ``batch_bytes`` uncompressed (from its footer)."""
    return min(most, max(64, batch_bytes * max(1, file.metadata.num_rows) // max(1, uncompressed_bytes(file))))


def open_files(paths: list[str], required: list[str]) -> tuple[list[SourceFile], pa.Schema | None]:
    """Read every file's footer, check the files share one schema and contain ``required`` columns."""
    files: list[SourceFile] = []
    schema: pa.Schema | None = None
    first = ""
    for index, path in enumerate(paths):
        try:
            meta = open_parquet(path)
        except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:  # a damaged footer can hold non-UTF-8 names
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        file_schema = meta.schema_arrow.remove_metadata()
        duplicated = sorted({n for n in file_schema.names if file_schema.names.count(n) > 1})
        if duplicated:
            raise InputError(f"{path}: column name(s) {', '.join(map(repr, duplicated))} appear more than once")
        if schema is None:
            schema, first = file_schema, path
            missing = [c for c in required if c not in schema.names]
            if missing:
                raise InputError(
                    f"{path}: column(s) {', '.join(map(repr, missing))} not found; available columns: {', '.join(schema.names)}"
                )
        elif not _same_columns(file_schema, schema):  # column order is not drift: writers reorder freely
            raise InputError(
                f"schema drift in the partition: {path} differs from {first}: {_schema_diff(schema, file_schema)}"
            )
        files.append(SourceFile(index, path, meta.metadata.num_rows))
    return files, schema


def _same_columns(a: pa.Schema, b: pa.Schema) -> bool:
    return sorted(a.names) == sorted(b.names) and all(a.field(f.name).equals(f) for f in b)


def _schema_diff(expected: pa.Schema, actual: pa.Schema) -> str:
    diffs = []
    for field in expected:
        if field.name not in actual.names:
            diffs.append(f"column {field.name!r} is missing")
        elif actual.field(field.name).type != field.type:
            diffs.append(f"column {field.name!r} is {actual.field(field.name).type}, expected {field.type}")
    diffs += [f"unexpected column {name!r}" for name in actual.names if name not in expected.names]
    return "; ".join(diffs) or "duplicate or differently typed columns"


def prefetch(batches: Iterator[tuple[int, pa.RecordBatch]], depth: int = 2) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Read ahead on a background thread: Parquet decoding releases the GIL, so it overlaps the caller's work.

    Closing the generator (the caller stopped, e.g. on an error) stops the reader and waits for it: a read still
    running in Arrow's thread pools when the process exits aborts it ("terminate called without an active
    exception") instead of exiting with the caller's error.
    """
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def produce() -> None:
        try:
            for item in batches:
                if stop.is_set():
                    break
                ahead.put(item)
        except BaseException as exc:  # handed to the consumer, which raises it
            ahead.put(exc)
        ahead.put(done)

    reader = threading.Thread(target=produce, name="batchkit-reader", daemon=True)
    reader.start()
    try:
        while (item := ahead.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # take what it is putting, so it sees the stop
            with contextlib.suppress(queue.Empty):
                ahead.get(timeout=0.05)


def rows_per_read(file: SourceFile, wide: list[str]) -> int:
    """Rows per read batch: ``READ_BATCH_ROWS``, fewer when the ``wide`` columns (e.g. inline images) would make a
    batch larger than ``WIDE_BATCH_BYTES`` (from the footer's uncompressed sizes)."""
    if not wide or not file.rows:
        return READ_BATCH_ROWS
    meta = open_parquet(file.path).metadata
    names = [meta.schema.column(i).path.split(".")[0] for i in range(meta.num_columns)]
    size = sum(
        meta.row_group(g).column(i).total_uncompressed_size
        for g in range(meta.num_row_groups)
        for i, name in enumerate(names)
        if name in wide
    )
    return max(1, min(READ_BATCH_ROWS, WIDE_BATCH_BYTES * file.rows // max(size, 1)))


def iter_batches(
    file: SourceFile, columns: list[str], rows: int = READ_BATCH_ROWS
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield ``(first_row_index, batch)`` of at most ``rows`` rows for ``columns`` of one file, streaming."""
    start = 0
    try:
        for batch in open_parquet(file.path, pre_buffer=False, buffer_size=1 << 20).iter_batches(
            batch_size=rows, columns=columns
        ):
            yield start, batch.select(columns)  # the first file's column order, whatever this file's is
            start += batch.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{file.path}: cannot read rows after row {start} ({exc})") from None
