"""Arrow arrays to and from numpy through their buffers.

pyarrow's own conversions (``to_numpy``, ``pa.array``, Python scalars in compute calls) import pandas on first
use when it is installed: about a second per process, as long as a whole split of 100,000 rows.
"""

import numpy as np
import pyarrow as pa

_NUMBERS = {pa.int32(): np.int32, pa.int64(): np.int64}


def flags(array: pa.Array) -> np.ndarray:
    """A boolean array as numpy booleans; null is False."""
    bits = np.unpackbits(np.frombuffer(array.buffers()[1], np.uint8), bitorder="little")
    values = bits[array.offset : array.offset + len(array)].astype(bool)
    return values & valid(array) if array.null_count else values


def valid(array: pa.Array) -> np.ndarray:
    """Where ``array`` is not null."""
    if not array.null_count:
        return np.ones(len(array), bool)
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)].astype(bool)


def numbers(array: pa.Array) -> np.ndarray:
    """An int32 or int64 array as int64; null is 0."""
    values = np.frombuffer(array.buffers()[1], _NUMBERS[array.type])[array.offset : array.offset + len(array)]
    return np.where(valid(array), values, 0).astype(np.int64)


def bools(values: np.ndarray) -> pa.Array:
    """numpy booleans as a boolean array (no nulls)."""
    bits = pa.py_buffer(np.packbits(values.astype(bool), bitorder="little"))
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, bits])


def int64s(values: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values.astype(np.int64))])


def binaries(values: list[bytes]) -> pa.Array:
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, values), np.int64, len(values)), out=offsets[1:])
    return pa.Array.from_buffers(
        pa.large_binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(values))]
    )


def strings(values: list[str | None]) -> pa.Array:
    """Python strings (or None) as a string array."""
    present = np.fromiter((v is not None for v in values), bool, len(values))
    data = [v.encode() for v in values if v is not None]
    offsets = np.zeros(len(values) + 1, np.int64)
    lengths = np.zeros(len(values), np.int64)
    lengths[present] = np.fromiter(map(len, data), np.int64, len(data))
    np.cumsum(lengths, out=offsets[1:])
    validity = None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))
    return pa.Array.from_buffers(
        pa.large_string(), len(values), [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    ).cast(pa.string())


def text_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The int64 offsets (from 0) and the bytes of a string or binary array without nulls."""
    if array.null_count:
        raise ValueError("expected no null values")
    array = array.cast(pa.large_binary())
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def text_scalar(value: str) -> pa.Scalar:
    """A ``large_string`` scalar for compute functions."""
    return binaries([value.encode()]).cast(pa.large_string())[0]
