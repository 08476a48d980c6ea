"""Prompt and id columns as text: any string, number or binary column, with invalid UTF-8 located by row."""

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from .source import SourceFile

BINARY_TYPES = (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary)


def check_utf8(column: pa.Array, file: SourceFile, start: int, name: str) -> None:
    """Fail on the first row of a string or binary column whose bytes are not valid UTF-8."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:
            column.validate(full=True)
            return
        except pa.ArrowInvalid:
            column = column.view(pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary())
    elif not any(is_type(column.type) for is_type in BINARY_TYPES):
        return
    for offset, value in enumerate(column.to_pylist()):
        try:
            value is None or value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{file.path}: column {name!r}, row {start + offset}: text is not valid UTF-8 "
                f"({exc.reason} at byte {exc.start})"
            ) from None


def as_text(column: pa.Array, file: SourceFile, name: str) -> pa.Array:
    """The column as strings (numbers and binary UTF-8 are converted)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    try:
        return pc.cast(column, pa.large_string())
    except pa.ArrowInvalid:
        raise  # invalid UTF-8 in a binary column: the caller locates the row
    except pa.ArrowException as exc:
        raise InputError(f"{file.path}: column {name!r} of type {column.type} cannot be used as text ({exc})") from None
