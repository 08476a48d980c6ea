"""The partition's rows as split + the ledger's answers -> one Parquet file of every row with its result.

Each row takes the best answer the ledger holds for its ``custom_id`` and request fingerprint, whichever run
paid for it: ``ok`` first, then a final error, then an unanswered one; the latest within each. A row whose
request changed is therefore never paired with the answer to its old prompt. Runs in DuckDB, out of core.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from . import storage
from .results import RESULT_SCHEMA

SKIPPED_MESSAGE = "not submitted: the prompt was null or empty"


def merge_partition(rows_url: str, result_urls: list[str], out: Path, memory_limit: str = "512MB") -> dict[str, int]:
    """Write every row of ``rows_url`` with its result to ``out`` (atomically; row order is not kept).

    :returns: ``rows``, ``ok``, ``errors`` (skipped rows included) and ``unanswered`` (rows whose request has
        no result at all; the caller refuses to load those).
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
            "SELECT count(*), count(*) FILTER (status = 'ok'), count(*) FILTER (error_code = 'no_result') "
            "FROM read_parquet(?)",
            [str(partial)],
        ).fetchone()
    partial.replace(out)
    return {"rows": counts[0], "ok": counts[1], "errors": counts[0] - counts[1], "unanswered": counts[2]}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return text.replace("'", "''")


def _duck(arrow_type: object) -> str:
    from .warehouse.duckdb_loader import duckdb_type

    return duckdb_type(arrow_type)
