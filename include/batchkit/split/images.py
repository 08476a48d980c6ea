"""Image columns: each cell as the URL a request sends (``http(s)://`` or ``data:image/...;base64,``), its size when
the image itself is at hand (data URLs, bytes) and, for a cell that cannot be sent, why.

A string cell is sent as it is when it is an http(s) URL or a ``data:image/`` base64 URL; a binary cell holds the
image's bytes, sent as a data URL whose type is sniffed from its magic bytes (PNG, JPEG, GIF, WebP: what the API
reads). A null cell, any other string and bytes of any other kind make the row a skipped row with that reason.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..results.arrow_numpy import bools, flags, strings, valid
from .text_columns import BINARY_TYPES

DATA_PREFIX = "data:image/"
DATA_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp"})  # what the API reads
_SNIFF_BYTES = 96 * 1024  # an image's size is in its first bytes (a JPEG's frame header follows its EXIF data)


@dataclass(frozen=True)
class ImageCells:
    """One image column of a record batch, as sent."""

    urls: pa.Array  # large_string; null where the cell cannot be sent
    width: np.ndarray  # int64 pixels; 0: not known here (an http URL)
    height: np.ndarray
    reasons: dict[int, str]  # row -> why its cell cannot be sent


def image_cells(column: pa.Array, name: str) -> ImageCells:
    """``column`` (string: URLs; binary: image bytes) as the URLs each row sends.

    :raises InputError: a column of another type (a setting error, not a row's)."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return _from_strings(column, name)
    if any(is_type(column.type) for is_type in BINARY_TYPES):
        return _from_bytes(column, name)
    raise InputError(
        f"image column {name!r} is of type {column.type}: it must hold URLs (string) or image bytes (binary)"
    )


def _from_strings(column: pa.Array, name: str) -> ImageCells:
    n = len(column)
    width, height = np.zeros(n, np.int64), np.zeros(n, np.int64)
    web = flags(pc.match_substring_regex(column, r"^https?://\S", ignore_case=True))
    data = flags(pc.starts_with(column, DATA_PREFIX, ignore_case=True))
    reasons = _nulls(column, name)
    for row in np.flatnonzero(valid(column) & ~web & ~data).tolist():
        reasons[row] = f"image column {name!r}: not an http(s) URL or a data:image/ URL"
    for row in np.flatnonzero(data).tolist():
        image, problem = _data_url_image(column[row].as_py())
        if problem:
            reasons[row] = f"image column {name!r}: {problem}"
        else:
            width[row], height[row] = image
    keep = np.ones(n, bool)
    keep[list(reasons)] = False
    urls = pc.if_else(bools(keep), column.cast(pa.large_string()), pa.nulls(n, pa.large_string()))
    return ImageCells(urls, width, height, reasons)


def _from_bytes(column: pa.Array, name: str) -> ImageCells:
    n = len(column)
    width, height = np.zeros(n, np.int64), np.zeros(n, np.int64)
    reasons = _nulls(column, name)
    urls: list[str | None] = [None] * n
    for row, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        kind, size = sniff(value)
        if kind is None:
            reasons[row] = f"image column {name!r}: {_NOT_AN_IMAGE}"
            continue
        urls[row] = f"data:image/{kind};base64,{base64.b64encode(value).decode('ascii')}"
        width[row], height[row] = size or (0, 0)
    return ImageCells(strings(urls).cast(pa.large_string()), width, height, reasons)


_NOT_AN_IMAGE = "not a PNG, JPEG, GIF or WebP image"


def _nulls(column: pa.Array, name: str) -> dict[int, str]:
    return {row: f"image column {name!r} is null" for row in np.flatnonzero(~valid(column)).tolist()}


def _data_url_image(url: str) -> tuple[tuple[int, int], str | None]:
    """The size of a data URL's image, or why it is not one."""
    header, comma, payload = url.partition(",")
    if not comma or not header.lower().endswith(";base64"):
        return (0, 0), "a data: URL must be base64 (data:image/<type>;base64,...)"
    if header[5:].split(";")[0].lower() not in DATA_TYPES:
        return (0, 0), f"a data: URL's type must be one of {', '.join(sorted(DATA_TYPES))}"
    head = payload[: _SNIFF_BYTES // 3 * 4]  # whole 4-character groups
    try:
        first = base64.b64decode(head, validate=True)
    except (binascii.Error, ValueError):
        return (0, 0), "its data: URL is not valid base64"
    kind, size = sniff(first)
    if kind is None:
        return (0, 0), _NOT_AN_IMAGE
    if size is None and len(head) < len(payload):  # a frame header further in: read the whole image
        try:
            kind, size = sniff(base64.b64decode(payload))
        except (binascii.Error, ValueError):
            return (0, 0), "its data: URL is not valid base64"
    return size or (0, 0), None


def sniff(data: bytes) -> tuple[str | None, tuple[int, int] | None]:
    """The image type (``png``, ``jpeg``, ``gif``, ``webp``; None: none of them) and ``(width, height)`` when the
    header says it (None: not found in ``data``)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png", struct.unpack(">II", data[16:24]) if len(data) >= 24 and data[12:16] == b"IHDR" else None
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif", struct.unpack("<HH", data[6:10]) if len(data) >= 10 else None
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg", _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", _webp_size(data)
    return None, None


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xDA)):  # no length
            at += 2
            continue
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None
