"""The partition's rows as split + the ledger's answers -> one Parquet file of every row with its result.

Each row takes the best answer the ledger holds for its ``custom_id`` and request fingerprint, whichever run
paid for it: ``ok`` first, then a final error, then an unanswered one; the latest within each. A row whose
request changed is therefore never paired with the answer to its old prompt.

Memory stays bounded at any partition size: rows and answers are first spread over hash buckets of
``custom_id`` on local disk (``batchkit.results.buckets``), sized from the task's memory budget; DuckDB then joins one
bucket at a time and the merged rows stream into the output file in row groups of ``ROW_GROUP_ROWS``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import memory, structured
from ..memory import DEFAULT_TASK_MEMORY_MB
from ..split.batchfiles import SKIPPED_COLUMN
from ..split.source import open_parquet
from ..structured import INVALID
from . import buckets, moderations
from .answers import BEST_FIRST_SQL, ResultStatus
from .result_schema import LEDGER_SCHEMA, RESULT_SCHEMA

log = logging.getLogger(__name__)
SKIPPED_MESSAGE = "not submitted: the prompt was null or empty"
BUCKET_SHARE = 16  # a bucket's uncompressed data may take this fraction of the headroom (rows, answers, join, out)
READ_SHARE = 32  # bytes of one read batch while spreading
ROW_GROUP_ROWS = 8_192  # merged rows per row group: what the loaders hold at once


def merge_partition(
    rows_url: str,
    result_urls: list[str],
    out: Path,
    task_memory_mb: int = DEFAULT_TASK_MEMORY_MB,
    output_schema: dict[str, Any] | None = None,
    bucket_count: int | None = None,
    endpoint: str | None = None,
) -> dict[str, int]:
    """Write every row of ``rows_url`` with its result to ``out`` (atomically; row order is not kept).

    :param task_memory_mb: the task process's memory budget; the merge sizes its buckets and DuckDB's memory
        limit to what the process has left of it, and spills the rest to disk beside ``out``.
    :param output_schema: the split's output schema: each ok answer's properties become typed columns.
    :param bucket_count: how many buckets to join one at a time (default: as many as the headroom needs).
    :param endpoint: the split's endpoint: moderation answers become typed columns (``results.moderations``).
    :returns: ``rows``, ``ok``, ``errors`` (skipped and invalid outputs included), ``invalid`` (answers that do
        not follow the output schema) and ``unanswered`` (rows whose request has no result at all; the caller
        refuses to load those).
    """
    import duckdb

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    headroom = memory.headroom(task_memory_mb)  # taken once: what this process holds later is partly ours
    read = headroom // READ_SHARE
    total = buckets.data_bytes([rows_url, *result_urls])
    buckets.check_disk(out.parent, total)
    count = bucket_count or buckets.bucket_count(total, headroom // BUCKET_SHARE)
    log.info(
        "merging %d answer file(s) onto the rows in %d bucket(s): %d MB of the task's %d MB budget left",
        len(result_urls),
        count,
        headroom >> 20,
        task_memory_mb,
    )
    counts = dict.fromkeys(("rows", "ok", "unanswered", "invalid"), 0)
    with tempfile.TemporaryDirectory(prefix=".merge-spill-", dir=out.parent) as spill:
        rows_schema = open_parquet(rows_url).schema_arrow.remove_metadata()
        row_files = buckets.spread([rows_url], "__custom_id", rows_schema, count, Path(spill) / "rows", read)
        answer_schema = buckets.unified_schema(result_urls, LEDGER_SCHEMA)
        answer_files = buckets.spread(result_urls, "custom_id", answer_schema, count, Path(spill) / "answers", read)
        query = _query(rows_schema.names, output_schema, endpoint)
        config = {"memory_limit": memory.duckdb_limit(headroom, 3), "threads": 2, "temp_directory": spill}
        writer = None
        with duckdb.connect(config={**config, "preserve_insertion_order": False}) as con:
            for row_file, answer_file in zip(row_files, answer_files, strict=True):
                con.register("s", buckets.read_bucket(row_file))
                con.register("a", buckets.read_bucket(answer_file))
                row_file.unlink()  # read: the disk they held makes room for the merged rows
                answer_file.unlink()
                reader = con.sql(query).to_arrow_reader(ROW_GROUP_ROWS)
                writer = writer or pq.ParquetWriter(partial, reader.schema)
                for batch in reader:
                    writer.write_batch(batch)
                    _count(batch, counts)
        writer.close()
    partial.replace(out)
    rows, ok = counts["rows"], counts["ok"]
    return {
        "rows": rows,
        "ok": ok,
        "errors": rows - ok,
        "invalid": counts["invalid"],
        "unanswered": counts["unanswered"],
    }


def merged_schema(
    rows_schema: pa.Schema, output_schema: dict[str, Any] | None = None, endpoint: str | None = None
) -> pa.Schema:
    """The columns ``merge_partition`` writes for staged rows of ``rows_schema``: its query run on no rows."""
    import duckdb

    with duckdb.connect() as con:
        con.register("s", rows_schema.empty_table())
        con.register("a", LEDGER_SCHEMA.empty_table())
        return con.sql(_query(rows_schema.names, output_schema, endpoint)).to_arrow_reader(1).schema


def _query(input_columns: list[str], output_schema: dict[str, Any] | None, endpoint: str | None = None) -> str:
    """The join of one bucket: staged rows ``s`` with the best of the answers ``a``."""
    staged = ("__custom_id", "__fingerprint", SKIPPED_COLUMN)
    kept = [c for c in input_columns if c not in (*staged, *RESULT_SCHEMA.names)]
    skipped = f"'{SKIPPED_MESSAGE}'"
    if SKIPPED_COLUMN in input_columns:  # why each row was skipped (image columns)
        skipped = f"coalesce('not submitted: ' || s.{SKIPPED_COLUMN}, {skipped})"
    result_columns = [f.name for f in RESULT_SCHEMA if f.name not in ("custom_id", "batch_id", "status")]
    select = ", ".join(
        [f"s.{_q(c)}" for c in kept]
        + [
            "s.__custom_id AS custom_id",
            "CASE WHEN s.__fingerprint IS NULL THEN '' ELSE r.batch_id END AS batch_id",
            f"CASE WHEN s.__fingerprint IS NULL THEN '{ResultStatus.ERROR}' "
            f"ELSE coalesce(r.status, '{ResultStatus.ERROR}') END AS status",
        ]
        + [f"r.{_q(c)}" for c in result_columns if c not in ("error_code", "error_message", "attempts")]
        + [
            "CASE WHEN s.__fingerprint IS NULL THEN 'skipped' WHEN r.status IS NULL THEN 'no_result' "
            "ELSE r.error_code END AS error_code",
            f"CASE WHEN s.__fingerprint IS NULL THEN {skipped} ELSE r.error_message END AS error_message",
            "CAST(CASE WHEN s.__fingerprint IS NULL THEN 0 ELSE r.attempts END AS INTEGER) AS attempts",
        ]
        + _answer_columns(output_schema)
        + moderations.selects(endpoint, f"r.status = '{ResultStatus.OK}'")
    )
    best = f"(SELECT * FROM a QUALIFY row_number() OVER (PARTITION BY custom_id, fingerprint ORDER BY {BEST_FIRST_SQL}) = 1)"
    return (
        f"SELECT {select} FROM s LEFT JOIN {best} r ON r.custom_id = s.__custom_id AND r.fingerprint = s.__fingerprint"
    )


def _count(batch: pa.RecordBatch, counts: dict[str, int]) -> None:
    status, code = batch.column("status"), batch.column("error_code")
    counts["rows"] += batch.num_rows
    counts["ok"] += pc.sum(pc.equal(status, ResultStatus.OK.value)).as_py() or 0
    counts["invalid"] += pc.sum(pc.equal(status, INVALID.value)).as_py() or 0
    counts["unanswered"] += pc.sum(pc.equal(code, "no_result")).as_py() or 0


def _answer_columns(output_schema: dict[str, Any] | None) -> list[str]:
    """One typed column per property of the output schema, read from each ok answer's JSON text."""
    if output_schema is None:
        return []
    selects = []
    for column in structured.columns(output_schema):
        pointer = "/" + column.name.replace("~", "~0").replace("/", "~1")
        value = f"json_extract(r.response_text, '{_literal(pointer)}')"
        if column.json:
            value = f"CAST({value} AS VARCHAR)"
        elif pa.types.is_string(column.type):
            value = f"json_extract_string(r.response_text, '{_literal(pointer)}')"
        else:
            value = f"TRY_CAST({value} AS {_duck(column.type)})"
        selects.append(f"CASE WHEN r.status = '{ResultStatus.OK}' THEN {value} END AS {_q(column.name)}")
    return selects


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return text.replace("'", "''")


def _duck(arrow_type: object) -> str:
    from ..warehouse.duckdb_loader import duckdb_type

    return duckdb_type(arrow_type)
