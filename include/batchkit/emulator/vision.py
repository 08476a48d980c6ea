"""Image inputs as the API checks and meters them: ``image_url`` parts on /v1/chat/completions, ``input_image``
parts on /v1/responses, image items on /v1/moderations.

A part is refused (a 400 line) as the API refuses it: an image URL that is neither ``http(s)://host/...`` nor a
base64 ``data:image/{png,jpeg,gif,webp};base64,...`` URL, a data URL whose bytes are not such an image, a ``detail``
off its values, a chat part of an unknown type. Nothing is fetched: a URL's image counts as 1024x1024; a data
URL's size is read from its header. Tokens follow OpenAI's vision guide (an estimate: tiles of 512 px for most
models, 32 px patches times a multiplier for the small ones)."""

import base64
import binascii
import math
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .lines import LineError

DETAILS = ("auto", "low", "high", "original")
CHAT_PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp"})
URL_SIZE = (1024, 1024)  # an image given by URL or file id (never fetched here)
SNIFF_CHARS = 96 * 1024  # base64 characters of a data URL decoded to find its size (a multiple of 4)

# (model prefix, (base, per 512 px tile)) or (model prefix, patch multiplier): longest prefix first
TILES = (
    ("gpt-4o-mini", (2833, 5667)),
    ("gpt-5-chat", (70, 140)),
    ("o1", (75, 150)),
    ("o3", (75, 150)),
    ("computer-use", (65, 129)),
)
PATCHES = (
    ("gpt-5-mini", 1.62),
    ("gpt-5-nano", 2.46),
    ("gpt-4.1-mini", 1.62),
    ("gpt-4.1-nano", 2.46),
    ("o4-mini", 1.72),
)
GPT5, DEFAULT_TILES, MAX_PATCHES = (70, 140), (85, 170), 1536


@dataclass(frozen=True)
class Image:
    detail: str
    size: tuple[int, int]


def chat_images(messages: list[dict]) -> list[Image]:
    """The images of chat ``messages`` (their ``image_url`` parts), checked as the API checks them."""
    images = []
    for i, message in enumerate(messages):
        content = message.get("content")
        for j, part in enumerate(content if isinstance(content, list) else ()):
            where = f"messages[{i}].content[{j}]"
            if not isinstance(part, dict):
                raise LineError(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
            kind = part.get("type")
            if kind not in CHAT_PART_TYPES:
                supported = ", ".join(f"'{t}'" for t in CHAT_PART_TYPES)
                raise LineError(f"Invalid value: '{kind}'. Supported values are: {supported}.", f"{where}.type")
            if kind == "image_url":
                ref = part.get("image_url")
                if not isinstance(ref, dict):
                    raise LineError(
                        f"Invalid type for '{where}.image_url': expected an object.",
                        f"{where}.image_url",
                        "invalid_type",
                    )
                size = check_url(ref.get("url"), f"{where}.image_url.url")
                images.append(Image(_detail(ref.get("detail"), f"{where}.image_url.detail"), size))
    return images


def responses_images(given: Any) -> list[Image]:
    """The images of a /v1/responses ``input`` (its ``input_image`` parts: ``image_url`` or ``file_id``)."""
    images = []
    for i, item in enumerate(given if isinstance(given, list) else ()):
        content = item.get("content") if isinstance(item, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(part, dict) or part.get("type") != "input_image":
                continue
            where = f"input[{i}].content[{j}]"
            url, file_id = part.get("image_url"), part.get("file_id")
            if url is not None:
                size = check_url(url, f"{where}.image_url")
            elif isinstance(file_id, str) and file_id:
                size = URL_SIZE
            else:
                raise LineError(
                    f"Missing required parameter: '{where}.image_url' (or '{where}.file_id').",
                    f"{where}.image_url",
                    "missing_required_parameter",
                )
            images.append(Image(_detail(part.get("detail"), f"{where}.detail"), size))
    return images


def _detail(value: Any, param: str) -> str:
    if value is None:
        return "auto"
    if value not in DETAILS:
        supported = ", ".join(f"'{d}'" for d in DETAILS)
        raise LineError(f"Invalid value: '{value}'. Supported values are: {supported}.", param)
    return value


def check_url(url: Any, param: str) -> tuple[int, int]:
    """The pixel size of the image at ``url`` (an http(s) URL counts as ``URL_SIZE``), or a 400."""
    if url is None:
        raise LineError(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if not isinstance(url, str):
        raise LineError(f"Invalid type for '{param}': expected a string.", param, "invalid_type")
    if url[:5].lower() == "data:":
        return _data_url(url, param)
    parts = urlsplit(url)
    if parts.scheme.lower() in ("http", "https") and parts.hostname:
        return URL_SIZE
    raise LineError(
        f"Invalid '{param}'. Expected a URL or a base64-encoded data URL with an image MIME type (e.g. "
        "'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got a value without the 'data:' prefix.",
        param,
    )


def _data_url(url: str, param: str) -> tuple[int, int]:
    header, comma, payload = url[5:].partition(",")
    mime, *options = header.split(";")
    if not comma or "base64" not in options:
        raise LineError(f"Invalid '{param}': expected a base64-encoded data URL (data:image/png;base64,...).", param)
    if mime.lower() not in IMAGE_TYPES:
        raise LineError("Invalid MIME type. Only image types are supported.", param, "invalid_image_format")
    try:
        head = base64.b64decode(payload[:SNIFF_CHARS], validate=True)
    except (binascii.Error, ValueError):
        head = b""
    found = sniff(head)
    if found is None:
        raise LineError(
            f"You uploaded an unsupported image ('{param}'). Please make sure your image is valid (PNG, JPEG, GIF "
            "or WebP).",
            param,
            "invalid_image_format",
        )
    return found or URL_SIZE


def sniff(data: bytes) -> tuple[int, int] | tuple[()] | None:
    """The (width, height) of PNG, GIF, WebP or JPEG bytes; ``()`` when the format is one of these but its size
    is not within ``data``; None when the bytes are none of them."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return struct.unpack(">II", data[16:24]) if len(data) >= 24 else ()
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", data[6:10]) if len(data) >= 10 else ()
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        chunk = data[12:16]
        if chunk == b"VP8X" and len(data) >= 30:
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8 " and len(data) >= 30:
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L" and len(data) >= 25:
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return ()
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | tuple[()]:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:
            i += 1 if marker == 0xFF else 2
            continue
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return ()


def image_tokens(model: str, image: Image) -> int:
    """Input tokens of ``image`` for ``model``, per OpenAI's vision guide (an estimate)."""
    width, height = max(1, image.size[0]), max(1, image.size[1])
    multiplier = next((m for prefix, m in PATCHES if model.startswith(prefix)), None)
    if multiplier is not None:
        patches = math.ceil(width / 32) * math.ceil(height / 32)
        if patches > MAX_PATCHES:
            shrink = math.sqrt(32 * 32 * MAX_PATCHES / (width * height))
            w, h = width * shrink / 32, height * shrink / 32
            shrink *= min(math.floor(w) / w, math.floor(h) / h)
            patches = min(MAX_PATCHES, math.ceil(width * shrink / 32) * math.ceil(height * shrink / 32))
        return math.ceil(patches * multiplier)
    tiles = next((t for prefix, t in TILES if model.startswith(prefix)), None)
    base, per_tile = tiles or (GPT5 if model.startswith("gpt-5") else DEFAULT_TILES)
    if image.detail == "low":
        return base
    fit = min(1.0, 2048 / max(width, height))
    width, height = width * fit, height * fit
    short = min(1.0, 768 / min(width, height))
    return base + per_tile * math.ceil(width * short / 512) * math.ceil(height * short / 512)
