"""Spread Parquet rows over hash buckets on local disk, so that a join over a partition of any size runs one
bucket at a time in bounded memory.

Rows go to bucket ``hash(key) % count`` (DuckDB's ``hash``), so every row of one key, from any file, lands in
the same bucket. Buckets are Arrow IPC files (LZ4), read back whole one at a time.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ScratchTooSmall
from ..split.source import batch_rows, open_parquet, uncompressed_bytes

DISK_FACTOR = 2.0  # local disk a merge needs per byte of uncompressed rows and answers (measured 1.2-1.75)


def data_bytes(urls: list[str]) -> int:
    """The uncompressed size of the Parquet files at ``urls`` (from their footers)."""
    return sum(uncompressed_bytes(open_parquet(url)) for url in urls)


def bucket_count(total_bytes: int, bucket_bytes: int) -> int:
    """How many buckets keep each under ``bucket_bytes`` of ``total_bytes`` uncompressed data."""
    return max(1, math.ceil(total_bytes / max(1, bucket_bytes)))


def check_disk(directory: Path, total_bytes: int) -> None:
    """Refuse before any work when ``directory`` cannot hold the buckets of ``total_bytes`` of data and the
    merged file (``DISK_FACTOR`` times the data: LZ4 buckets, DuckDB spill, the compressed output)."""
    need, free = int(total_bytes * DISK_FACTOR), shutil.disk_usage(directory).free
    if need > free:
        raise ScratchTooSmall(
            f"merging this partition needs about {need / 1e9:.1f} GB of local disk at {directory} (its rows and "
            f"answers are {total_bytes / 1e9:.1f} GB uncompressed) but only {free / 1e9:.1f} GB are free: free "
            "space there, give the workers a larger disk (TMPDIR for remote staging, the staging root for local "
            "staging), or split the partition into smaller ones"
        )


def spread(
    urls: list[str], key: str, schema: pa.Schema, count: int, directory: Path, batch_bytes: int = 64 << 20
) -> list[Path]:
    """Write the rows of ``urls`` (cast to ``schema``; missing columns null) into ``count`` bucket files by
    ``key``. Memory: one read batch of about ``batch_bytes`` (uncompressed) at a time.

    :returns: the bucket files, in bucket order (each holds ``schema``, possibly no rows).
    """
    import duckdb

    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{index:05d}.arrow" for index in range(count)]
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with ExitStack() as stack, duckdb.connect(config={"threads": 1}) as con:
        writers = [stack.enter_context(pa.ipc.new_file(os.fspath(p), schema, options=options)) for p in paths]
        for batch in _batches(urls, schema, batch_bytes):
            con.register("keys", batch.select([key]))
            buckets = con.sql(f'SELECT (hash("{key}") % {count})::INTEGER FROM keys').to_arrow_table().column(0)
            order = pc.sort_indices(buckets)
            ordered, sorted_buckets = batch.take(order), buckets.take(order)
            starts = pc.value_counts(sorted_buckets)
            offset = 0
            for entry in starts:  # value_counts keeps first-seen order, which is sorted here
                size = entry["counts"].as_py()
                writers[entry["values"].as_py()].write_batch(ordered.slice(offset, size))
                offset += size
    return paths


def read_bucket(path: Path) -> pa.Table:
    """One bucket, whole."""
    with pa.memory_map(os.fspath(path)) as source:
        return pa.ipc.open_file(source).read_all()


def unified_schema(urls: list[str], base: pa.Schema) -> pa.Schema:
    """``base`` plus any column the files add (files written by older versions may lack some of ``base``)."""
    schemas = [open_parquet(url).schema_arrow.remove_metadata() for url in urls]
    return pa.unify_schemas([base, *schemas], promote_options="permissive")


def _batches(urls: list[str], schema: pa.Schema, batch_bytes: int) -> Iterator[pa.RecordBatch]:
    for url in urls:
        file = open_parquet(url)
        for batch in file.iter_batches(batch_size=batch_rows(file, batch_bytes)):
            n = batch.num_rows
            names = batch.schema.names
            columns = [batch.column(f.name).cast(f.type) if f.name in names else pa.nulls(n, f.type) for f in schema]
            yield pa.RecordBatch.from_arrays(columns, schema=schema)
