"""Request lines built column-wise: JSON string escaping in numpy, lines assembled by one Arrow ``take``.

The bytes are exactly those of ``RequestShape.line`` (orjson's encoding), without a Python call per row: a
record batch's lines end up in one contiguous buffer that the batch files receive slice by slice.
"""

from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa

from .ledger import fingerprint
from .requests import RequestShape

# What orjson escapes in a string (UTF-8 stays as is); the backslash first, as the other escapes add backslashes.
_ESCAPES = {code: orjson.dumps(chr(code))[1:-1] for code in [ord("\\"), ord('"'), *range(0x20)]}


def _buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The int64 offsets (from 0) and the bytes of a string or binary array without nulls."""
    if array.null_count:
        raise ValueError("JSON strings cannot be built from null values")
    array = array.cast(pa.large_binary())
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def escape(array: pa.Array) -> pa.Array:
    """The JSON string contents (no quotes) of every value, byte for byte ``orjson.dumps(value)[1:-1]``."""
    offsets, data = _buffers(array)
    controls = np.flatnonzero(data < 0x20)
    found = {ord("\\"): np.flatnonzero(data == ord("\\")), ord('"'): np.flatnonzero(data == ord('"'))}
    found |= {code: controls[data[controls] == code] for code in np.unique(data[controls]).tolist()}
    found = {code: hits for code, hits in found.items() if len(hits)}
    if found:
        text, grown = data.tobytes(), np.zeros(len(offsets), np.int64)
        for code, hits in found.items():  # bytes.replace runs at memory speed; the offsets grow per row
            text = text.replace(bytes([code]), _ESCAPES[code])
            grown += np.bincount(np.searchsorted(offsets, hits, side="right"), minlength=len(offsets)) * (
                len(_ESCAPES[code]) - 1
            )
        offsets, data = offsets + np.cumsum(grown), text
    return pa.Array.from_buffers(pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


@dataclass(frozen=True)
class RequestLines:
    """The request lines of some rows: one ``large_binary`` value per request, newline included."""

    lines: pa.Array
    id_ends: np.ndarray  # per line, where its custom_id's JSON ends (from the line's start): what follows is fingerprinted

    @classmethod
    def build(cls, shape: RequestShape, ids: pa.Array, prompts: pa.Array) -> "RequestLines":
        """``shape``'s line for every (custom_id, prompt) pair, both given as text arrays without nulls."""
        count = len(ids)
        fixed = pa.array([shape.head + b'"', b'"' + shape.middle + b'"', b'"' + shape.tail], pa.large_binary())
        pieces = pa.concat_arrays([fixed, escape(ids), escape(prompts)])
        order = np.empty((count, 5), np.int64)  # head, id, middle, prompt, tail
        order[:, 0], order[:, 2], order[:, 4] = 0, 1, 2
        order[:, 1] = np.arange(3, 3 + count)
        order[:, 3] = order[:, 1] + count
        offsets, data = _buffers(pieces.take(pa.array(order.ravel())))
        starts = offsets[::5]
        lines = pa.Array.from_buffers(pa.large_binary(), count, [None, pa.py_buffer(starts.copy()), pa.py_buffer(data)])
        return cls(lines, offsets[2:-1:5] + 1 - starts[:-1])

    def take(self, positions: np.ndarray) -> "RequestLines":
        return RequestLines(self.lines.take(pa.array(positions, pa.int64())), self.id_ends[positions])

    def buffers(self) -> tuple[np.ndarray, np.ndarray]:
        """The line offsets (``len + 1``, from 0) and the bytes of all lines."""
        return _buffers(self.lines)

    def fingerprints(self) -> list[str]:
        """``ledger.fingerprint`` of every line: its bytes after the custom_id."""
        offsets, data = self.buffers()
        view = memoryview(data)
        return [fingerprint(view[a:b]) for a, b in zip((offsets[:-1] + self.id_ends).tolist(), offsets[1:].tolist())]
