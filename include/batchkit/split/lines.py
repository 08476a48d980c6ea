"""Request lines built column-wise: the bytes of ``RequestShape.line`` (orjson's encoding) for a whole record
batch, assembled by one Arrow ``take`` instead of a Python call per row.

Each text column (custom_ids, prompts, image URLs) is cut into pieces around the bytes JSON escapes (``"``, ``\\``
and controls; UTF-8 stays as is); the take interleaves the shape's fixed pieces, the text pieces and the escapes. The batch's lines end up
in one contiguous buffer that the batch files receive slice by slice.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa

from ..ledger import fingerprint
from ..results.arrow_numpy import binaries, int64s, text_buffers
from .requests import RequestShape

_ESCAPED = [ord('"'), ord("\\"), *range(0x20)]
_ESCAPE_AT = np.zeros(256, np.int64)  # byte -> index of its escape among the escapes
_ESCAPE_AT[_ESCAPED] = np.arange(len(_ESCAPED))
_BLOCK = 1 << 16  # bytes scanned at once: temporaries stay small and cached


def _escaped_positions(data: np.ndarray) -> np.ndarray:
    """Where ``data`` holds a byte JSON escapes, in order."""
    found = [np.zeros(0, np.int64)]
    for start in range(0, len(data), _BLOCK):
        block = data[start : start + _BLOCK]
        hits = np.flatnonzero((block < 0x20) | (block == ord('"')) | (block == ord("\\")))
        if len(hits):
            found.append(hits + start)
    return np.concatenate(found)


def _cut(array: pa.Array, base: int, escapes: int) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """``array``'s bytes cut before and after each byte to escape: the pieces, each value's first piece (and the
    count last), and the pieces' take order (``base`` + position, an escaped byte's escape in ``_table``, whose
    escapes start at ``escapes``)."""
    offsets, data = text_buffers(array)
    hits = _escaped_positions(data)
    firsts = np.arange(len(offsets)) + 2 * np.searchsorted(hits, offsets)
    at_hit = np.searchsorted(offsets, hits, side="right") + 2 * np.arange(len(hits))
    cuts = np.empty(len(offsets) + 2 * len(hits), np.int64)  # every position once: no sort needed
    cuts[firsts], cuts[at_hit], cuts[at_hit + 1] = offsets, hits, hits + 1
    pieces = pa.Array.from_buffers(pa.large_binary(), len(cuts) - 1, [None, pa.py_buffer(cuts), pa.py_buffer(data)])
    order = np.arange(base, base + len(cuts) - 1)
    order[at_hit] = escapes + _ESCAPE_AT[data[hits]]
    return pieces, firsts, order


def _fixed(shape: RequestShape) -> list[bytes]:
    """The fixed pieces of every line (before the id, between id and prompt, after the prompt or between images,
    after the last value), each with the quotes of the strings around it."""
    inner = [b'"' + piece + b'"' for piece in shape.pieces[1:-1]]
    return [shape.head + b'"', *inner, b'"' + shape.tail]


def _table(fixed: list[bytes]) -> pa.Array:
    """The fixed pieces, then the escapes."""
    return binaries(fixed + [orjson.dumps(chr(code))[1:-1] for code in _ESCAPED])


@dataclass(frozen=True)
class RequestLines:
    """The request lines of some rows: one ``large_binary`` value per request, newline included."""

    lines: pa.Array
    id_ends: (
        np.ndarray
    )  # per line, where its custom_id's JSON ends (from the line's start): what follows is fingerprinted

    @classmethod
    def build(
        cls, shape: RequestShape, ids: pa.Array, prompts: pa.Array, images: Sequence[pa.Array] = ()
    ) -> "RequestLines":
        """``shape``'s line for every (custom_id, prompt, image URLs...) row, each given as a text array without
        nulls (``images``: one array per image of the shape)."""
        fixed = _fixed(shape)
        table = _table(fixed)
        cuts, base = [], len(table)
        for values in (ids, prompts, *images):
            cuts.append(_cut(values, base, len(fixed)))
            base += len(cuts[-1][0])
        counts = [np.diff(firsts) for _, firsts, _ in cuts]  # pieces per line, per value
        line_firsts = np.concatenate([[0], np.cumsum(len(fixed) + sum(counts))]).astype(np.int64)
        at = line_firsts[:-1].copy()  # per line, where its next piece goes
        order = np.empty(line_firsts[-1], np.int64)  # per line: head, id pieces, middle, prompt pieces, ..., tail
        for i, ((_, firsts, value_order), count) in enumerate(zip(cuts, counts)):
            order[at] = i
            at += 1
            order[np.arange(len(value_order)) + np.repeat(at - firsts[:-1], count)] = value_order
            at += count
            if i == 0:
                id_closed = at.copy()  # the piece after the custom_id (its closing quote first)
        order[at] = len(fixed) - 1
        joined = pa.chunked_array([table, *(pieces for pieces, _, _ in cuts)]).take(int64s(order))
        offsets, data = text_buffers(joined.chunk(0) if joined.num_chunks == 1 else joined.combine_chunks())
        starts = offsets[line_firsts]
        count = len(line_firsts) - 1
        lines = pa.Array.from_buffers(pa.large_binary(), count, [None, pa.py_buffer(starts), pa.py_buffer(data)])
        return cls(lines, offsets[id_closed] + 1 - starts[:-1])

    def take(self, positions: np.ndarray) -> "RequestLines":
        return RequestLines(self.lines.take(int64s(positions)), self.id_ends[positions])

    def buffers(self) -> tuple[np.ndarray, np.ndarray]:
        """The line offsets (``len + 1``, from 0) and the bytes of all lines."""
        return text_buffers(self.lines)

    def fingerprints(self) -> list[str]:
        """``ledger.fingerprint`` of every line: its bytes after the custom_id."""
        offsets, data = self.buffers()
        view = memoryview(data)
        return [fingerprint(view[a:b]) for a, b in zip((offsets[:-1] + self.id_ends).tolist(), offsets[1:].tolist())]
