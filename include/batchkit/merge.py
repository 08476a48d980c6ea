"""The partition's rows as split + the ledger's answers -> one Parquet file of every row with its result.

Each row takes the best answer the ledger holds for its ``custom_id`` and request fingerprint, whichever run
paid for it: ``ok`` first, then a final error, then an unanswered one; the latest within each. A row whose
request changed is therefore never paired with the answer to its old prompt. Runs in DuckDB, out of core.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from . import storage, structured
from .result_schema import RESULT_SCHEMA
from .structured import INVALID

SKIPPED_MESSAGE = "not submitted: the prompt was null or empty"


def merge_partition(
    rows_url: str,
    result_urls: list[str],
    out: Path,
    memory_limit: str = "512MB",
    output_schema: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Write every row of ``rows_url`` with its result to ``out`` (atomically; row order is not kept).

    :param output_schema: the split's output schema: each ok answer's properties become typed columns.
    :returns: ``rows``, ``ok``, ``errors`` (skipped and invalid outputs included), ``invalid`` (answers that do
        not follow the output schema) and ``unanswered`` (rows whose request has no result at all; the caller
        refuses to load those).
    """
    import duckdb

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    with (
        tempfile.TemporaryDirectory(prefix=".merge-spill-", dir=out.parent) as spill,
        duckdb.connect(config={"memory_limit": memory_limit, "threads": 2, "temp_directory": spill}) as con,
    ):  # joins and sorts larger than memory_limit spill to disk instead of failing
        remote = {url.split("://", 1)[0]: url for url in [rows_url, *result_urls[:1]] if storage.is_remote(url)}
        for url in remote.values():  # one filesystem per protocol: DuckDB refuses a second registration
            con.register_filesystem(storage.url_to_fs(url)[0])
        inputs = [f[0] for f in con.execute("SELECT * FROM read_parquet(?) LIMIT 0", [rows_url]).description]
        kept = [c for c in inputs if c not in ("__custom_id", "__fingerprint", *RESULT_SCHEMA.names)]
        result_columns = [f.name for f in RESULT_SCHEMA if f.name not in ("custom_id", "batch_id", "status")]
        select = ", ".join(
            [f"s.{_q(c)}" for c in kept]
            + [
                "s.__custom_id AS custom_id",
                "CASE WHEN s.__fingerprint IS NULL THEN '' ELSE r.batch_id END AS batch_id",
                "CASE WHEN s.__fingerprint IS NULL THEN 'error' ELSE coalesce(r.status, 'error') END AS status",
            ]
            + [f"r.{_q(c)}" for c in result_columns if c not in ("error_code", "error_message", "attempts")]
            + [
                "CASE WHEN s.__fingerprint IS NULL THEN 'skipped' WHEN r.status IS NULL THEN 'no_result' "
                "ELSE r.error_code END AS error_code",
                f"CASE WHEN s.__fingerprint IS NULL THEN '{SKIPPED_MESSAGE}' ELSE r.error_message END AS error_message",
                "CAST(CASE WHEN s.__fingerprint IS NULL THEN 0 ELSE r.attempts END AS INTEGER) AS attempts",
            ]
            + _answer_columns(output_schema)
        )
        answers = (
            "(SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY custom_id, fingerprint ORDER BY "
            "CASE WHEN status = 'ok' THEN 0 WHEN final THEN 1 ELSE 2 END, recorded_at DESC, attempts DESC) AS best "
            "FROM read_parquet(?, union_by_name = true)) WHERE best = 1)"
            if result_urls
            else "(SELECT NULL::VARCHAR AS custom_id, NULL::VARCHAR AS fingerprint, "
            + ", ".join(f"NULL::{_duck(f.type)} AS {f.name}" for f in RESULT_SCHEMA if f.name != "custom_id")
            + " WHERE false)"
        )
        query = (
            f"SELECT {select} FROM read_parquet(?) s "
            f"LEFT JOIN {answers} r ON r.custom_id = s.__custom_id AND r.fingerprint = s.__fingerprint"
        )
        parameters = [rows_url, result_urls] if result_urls else [rows_url]
        con.execute(f"COPY ({query}) TO '{_literal(str(partial))}' (FORMAT parquet)", parameters)
        counts = con.execute(
            "SELECT count(*), count(*) FILTER (status = 'ok'), count(*) FILTER (error_code = 'no_result'), "
            f"count(*) FILTER (status = '{INVALID}') FROM read_parquet(?)",
            [str(partial)],
        ).fetchone()
    partial.replace(out)
    rows, ok, unanswered, invalid = counts
    return {"rows": rows, "ok": ok, "errors": rows - ok, "invalid": invalid, "unanswered": unanswered}


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
        selects.append(f"CASE WHEN r.status = 'ok' THEN {value} END AS {_q(column.name)}")
    return selects


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return text.replace("'", "''")


def _duck(arrow_type: object) -> str:
    from .warehouse.duckdb_loader import duckdb_type

    return duckdb_type(arrow_type)
