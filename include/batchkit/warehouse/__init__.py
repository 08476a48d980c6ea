"""Warehouse loaders: merged result Parquet -> a table, replacing one partition's rows atomically.

Every loader creates the table when missing, adds new nullable columns when the input grows, refuses
incompatible type changes, and deletes + inserts the partition's rows in one transaction.
"""

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pyarrow as pa

from ..errors import InputError
from ..split.source import batch_rows, open_parquet

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
READ_BYTES = 16 << 20  # uncompressed merged rows per batch handed to a warehouse (~2,600 embeddings of 1,536)
LOAD_COLUMNS = [("partition_key", pa.string()), ("dag_run_id", pa.string()), ("loaded_at", pa.timestamp("us"))]


def without_passwords(text: str) -> str:
    """``text`` fit for a message: passwords in URIs (``user:pw@``, ``:pw@``, ``password=pw``) replaced by ***."""
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password=)[^&\s]*", r"\1***", text, flags=re.IGNORECASE)


def quote_identifier(name: str) -> str:
    """Validate a (possibly schema-qualified) table name from user input and quote each part."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise InputError(f"invalid table name {name!r}: use letters, digits and _ (optionally schema.table)")
    return ".".join(f'"{p}"' for p in parts)


def quote_column(name: str) -> str:
    """Quote any column name (input columns may hold spaces); a NUL cannot be quoted and is refused."""
    if not name or "\x00" in name or len(name.encode()) > 63:
        raise InputError(f"column name {name!r} cannot be used in a warehouse table (empty, NUL or > 63 bytes)")
    return '"' + name.replace('"', '""') + '"'


def load_schema(parquet_paths: list[str]) -> pa.Schema:
    """The columns of all result files (unified by name) plus the load bookkeeping columns."""
    try:
        schema = pa.unify_schemas([_read_schema(p) for p in parquet_paths])
    except pa.ArrowInvalid as exc:
        raise InputError(f"result files disagree on column types: {exc}") from None
    return with_load_columns(schema)


def with_load_columns(schema: pa.Schema) -> pa.Schema:
    """``schema`` plus the load bookkeeping columns (replacing any of the same name)."""
    for name, type_ in LOAD_COLUMNS:
        if name in schema.names:
            schema = schema.remove(schema.get_field_index(name))
        schema = schema.append(pa.field(name, type_))
    return schema


def _read_schema(path: str) -> pa.Schema:
    try:
        return open_parquet(path).schema_arrow.remove_metadata()
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet result file ({exc})") from None


def result_batches(
    parquet_paths: list[str], schema: pa.Schema, partition_key: str, dag_run_id: str
) -> pa.RecordBatchReader:
    """Stream the result files as ``schema`` (missing columns null), stamped with partition and run."""
    loaded_at = datetime.now(UTC).replace(tzinfo=None)

    def batches() -> Iterator[pa.RecordBatch]:
        for path in parquet_paths:
            file = open_parquet(path)
            for batch in file.iter_batches(batch_size=batch_rows(file, READ_BYTES)):
                n = batch.num_rows
                extra = {
                    "partition_key": pa.array([partition_key] * n),
                    "dag_run_id": pa.array([dag_run_id] * n),
                    "loaded_at": pa.array([loaded_at] * n, pa.timestamp("us")),
                }
                columns = [
                    extra[f.name]
                    if f.name in extra
                    else batch.column(f.name).cast(f.type)
                    if f.name in batch.schema.names
                    else pa.nulls(n, f.type)
                    for f in schema
                ]
                yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


BOOKKEEPING = ("partition_key", "dag_run_id")  # columns the loaders add to every table they create


def plan_columns(
    existing: dict[str, str], schema: pa.Schema, type_of: Callable[[pa.DataType], str], table: str
) -> list[tuple[str, str]]:
    """Columns to add to an existing table; raises on a table this pipeline did not create (it lacks the
    bookkeeping columns: the load would add columns to, and delete rows from, someone else's table) and on a
    column whose type would change."""
    missing = [name for name in BOOKKEEPING if name not in {k.lower() for k in existing}]
    if missing:
        raise InputError(
            f"table {table} exists but was not created by this pipeline (it has no {', '.join(missing)} "
            "column); nothing was changed: choose another target table"
        )
    added, conflicts = [], []
    for field in schema:
        wanted = type_of(field.type)
        have = existing.get(field.name)
        if have is None:
            added.append((field.name, wanted))
        elif have.lower() != wanted.lower():
            conflicts.append(f"{field.name!r} is {have} in the table but {wanted} in the results")
    if conflicts:
        raise InputError(
            f"incompatible schema change for table {table}: {'; '.join(conflicts)}. Load into a new "
            "table or migrate the column first."
        )
    return added
