"""The partition's id column checked before any request is written: no null, empty or duplicate id."""

import re
import tempfile
from typing import TYPE_CHECKING

from ..errors import InputError
from ..storage import is_remote, url_to_fs
from .source import SourceFile

if TYPE_CHECKING:
    import duckdb


def check_unique_ids(files: list[SourceFile], id_column: str) -> None:
    """Fail on null, empty or duplicate ids, naming the files and rows (DuckDB scan, bounded memory)."""
    import duckdb

    if not files:
        return
    with (
        tempfile.TemporaryDirectory(prefix="batchkit-ids-") as spill,
        duckdb.connect(
            config={"memory_limit": "64MB", "threads": 1, "temp_directory": spill}  # spills to disk: flat memory
        ) as con,
    ):
        con.execute("SET preserve_insertion_order=false")
        remote = [f.path for f in files if is_remote(f.path)]
        if remote:  # DuckDB reads object storage through the same fsspec filesystem
            con.register_filesystem(url_to_fs(remote[0])[0])
        try:
            _find_bad_ids(con, [_literal(f.path) for f in files], id_column)
        except duckdb.Error as exc:  # e.g. a corrupt data page: name the file DuckDB cannot read
            culprit = next((f.path for f in files if not _ids_readable(con, f.path, id_column)), "the partition")
            reason = str(exc).strip().splitlines()[0]
            raise InputError(f"{culprit}: column {id_column!r}: the ids cannot be read ({reason})") from None


def _ids_readable(con: "duckdb.DuckDBPyConnection", path: str, id_column: str) -> bool:
    import duckdb

    try:
        con.execute(
            f"SELECT count(CAST({_quoted(id_column)} AS VARCHAR)) FROM read_parquet(?)", [_literal(path)]
        ).fetchone()
    except duckdb.Error:
        return False
    return True


def _literal(path: str) -> str:
    """``path`` as a DuckDB glob matching only itself: its ``*``, ``?`` and ``[`` become character classes."""
    return re.sub(r"([*?\[])", r"[\1]", path)


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _find_bad_ids(con: "duckdb.DuckDBPyConnection", paths: list[str], id_column: str) -> None:
    column = _quoted(id_column)
    scan = "read_parquet(?, filename=true, file_row_number=true)"
    bad = con.execute(
        f"SELECT filename, file_row_number FROM {scan} WHERE {column} IS NULL OR CAST({column} AS VARCHAR) = '' "
        "ORDER BY 1, 2 LIMIT 1",
        [paths],
    ).fetchone()
    if bad:
        raise InputError(f"{bad[0]}: column {id_column!r}, row {bad[1]}: id is null or empty; every row needs an id")
    dup = con.execute(
        f"SELECT CAST({column} AS VARCHAR) FROM read_parquet(?) GROUP BY 1 HAVING count(*) > 1 LIMIT 1", [paths]
    ).fetchone()
    if dup:
        where = con.execute(
            f"SELECT filename, file_row_number FROM {scan} WHERE CAST({column} AS VARCHAR) = ? ORDER BY 1, 2 LIMIT 3",
            [paths, dup[0]],
        ).fetchall()
        places = "; ".join(f"{f} row {r}" for f, r in where)
        raise InputError(
            f"duplicate id {dup[0]!r} in column {id_column!r} ({places}): ids must be unique in the partition"
        )
