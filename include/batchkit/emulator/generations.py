"""The echo backend's other batch endpoints: /v1/completions (the prompt echoed, cut at ``max_tokens``, 16 by
default as the API does), /v1/images/generations and /v1/images/edits (solid-colour PNGs of the asked size as
``b64_json``, whatever ``output_format`` says), /v1/videos (a ``completed`` video job; its content is not served)."""

import base64
import functools
import re
import struct
import zlib
from typing import Any

from ..batch_api import Endpoint
from .checks import integer
from .lines import ECHO_CHARS, LineError, LineResult, digest, required_text, tokens
from .vision import Image, check_url, image_tokens

MAX_COMPLETION_PROMPTS, MAX_CHOICES, MAX_COMPLETION_TOKENS = 2048, 128, 1 << 20
MAX_IMAGES, MAX_SIDE = 10, 4096
QUALITY = {"auto": "medium", "standard": "medium", "hd": "high", "low": "low", "medium": "medium", "high": "high"}
OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}  # a 1024x1024 image of GPT Image 1; scaled by area
VIDEO_SECONDS, VIDEO_SIZES = ("4", "8", "12"), ("720x1280", "1280x720", "1024x1792", "1792x1024")
VIDEO_ASSETS_SECONDS = 24 * 3600  # how long a video's assets stay downloadable (expires_at)


def _bounded(body: dict[str, Any], name: str, default: int, most: int) -> int:
    value = integer(body.get(name, default))
    if value is None or not 1 <= value <= most:
        raise LineError(f"Invalid '{name}': an integer from 1 to {most}.", name)
    return value


def completion(body: dict[str, Any], model: str, key: str, created: int) -> LineResult:
    """A ``Completion`` (``text_completion``) for a /v1/completions request, or a 400."""
    given = body.get("prompt")
    if given is None:
        raise LineError("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if isinstance(given, str) or (isinstance(given, list) and given and all(integer(t) is not None for t in given)):
        prompts = [given]
    elif isinstance(given, list) and 0 < len(given) <= MAX_COMPLETION_PROMPTS:
        prompts = given
    else:
        prompts = []
    texts = [p if isinstance(p, str) else " ".join(str(integer(t)) for t in p) for p in prompts if _prompt(p)]
    if not prompts or len(texts) != len(prompts):
        raise LineError(
            "Invalid 'prompt': a string, an array of strings, tokens, or an array of token arrays.", "prompt"
        )
    n, limit = _bounded(body, "n", 1, MAX_CHOICES), _bounded(body, "max_tokens", 16, MAX_COMPLETION_TOKENS)
    choices = []
    for text in texts:
        said = f"echo: {text[:ECHO_CHARS]}"
        cut = tokens(said) > limit
        for _ in range(n):
            choice = {"text": said[: limit * 4] if cut else said, "index": len(choices), "logprobs": None}
            choices.append({**choice, "finish_reason": "length" if cut else "stop"})
    p = sum(tokens(prompt) if isinstance(prompt, str) else len(prompt) for prompt in prompts)
    c = sum(tokens(choice["text"]) for choice in choices)
    return LineResult(
        200,
        {
            "id": f"cmpl-{digest(key)}",
            "object": "text_completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_emulator",
            "choices": choices,
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        },
    )


def _prompt(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(integer(t) is not None for t in value)
    return isinstance(value, str)


def images(url: str, body: dict[str, Any], model: str, key: str, created: int) -> LineResult:
    """An ``ImagesResponse`` for /v1/images/generations or /v1/images/edits, or a 400."""
    prompt = required_text(body, "prompt")
    given = _edited_images(body, model) if url == Endpoint.IMAGES_EDITS else []
    n = _bounded(body, "n", 1, MAX_IMAGES)
    size = body.get("size", "auto")
    found = re.fullmatch(r"(\d{2,4})x(\d{2,4})", size) if isinstance(size, str) else None
    if size != "auto" and not (found and all(16 <= int(side) <= MAX_SIDE for side in found.groups())):
        raise LineError(f"Invalid 'size': 'auto' or WIDTHxHEIGHT, each side 16 to {MAX_SIDE} pixels.", "size")
    width, height = (int(found[1]), int(found[2])) if found else (1024, 1024)
    quality = body.get("quality", "auto")
    if quality not in QUALITY:
        supported = ", ".join(f"'{q}'" for q in QUALITY)
        raise LineError(f"Invalid value: '{quality}'. Supported values are: {supported}.", "quality")
    data = [{"b64_json": base64.b64encode(png(width, height, digest(key, str(i)))).decode()} for i in range(n)]
    answer: dict[str, Any] = {
        "created": created,
        "background": "opaque",
        "data": data,
        "output_format": "png",
        "quality": QUALITY[quality],
        "size": f"{width}x{height}",
    }
    if not model.startswith("dall-e"):  # GPT Image models report usage; DALL·E did not
        text, pictures = tokens(prompt), sum(image_tokens(model, image) for image in given)
        out = n * round(OUTPUT_TOKENS[QUALITY[quality]] * width * height / (1024 * 1024))
        answer["usage"] = {
            "input_tokens": text + pictures,
            "input_tokens_details": {"text_tokens": text, "image_tokens": pictures},
            "output_tokens": out,
            "output_tokens_details": {"image_tokens": out, "text_tokens": 0},
            "total_tokens": text + pictures + out,
        }
    return LineResult(200, answer)


def _edited_images(body: dict[str, Any], model: str) -> list[Image]:
    """The images an edit starts from: ``images`` (``{"image_url"}`` or ``{"file_id"}`` references, the JSON
    form) or ``image`` (a URL or a list of URLs)."""
    refs = body.get("images", body.get("image"))
    name = "image" if "image" in body and "images" not in body else "images"
    refs = [refs] if isinstance(refs, str | dict) else refs
    if not isinstance(refs, list) or not 1 <= len(refs) <= 16:
        raise LineError(f"Missing required parameter: '{name}' (1 to 16 images).", name, "missing_required_parameter")
    found = []
    for k, ref in enumerate(refs):
        where = f"{name}[{k}]"
        if isinstance(ref, dict) and isinstance(ref.get("file_id"), str):
            found.append(Image("high", (1024, 1024)))
            continue
        url = ref.get("image_url") if isinstance(ref, dict) else ref
        where += ".image_url" if isinstance(ref, dict) else ""
        found.append(Image("high", check_url(url, where)))
    return found


@functools.cache
def _pixels(width: int, height: int) -> bytes:
    """The compressed rows of a one-colour palette image (1 bit per pixel, all index 0)."""
    row = b"\x00" + bytes((width + 7) // 8)
    return zlib.compress(row * height, 9)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, seed: str) -> bytes:
    """A valid PNG of ``width`` x ``height`` in one colour taken from ``seed``."""
    header = struct.pack(">IIBBBBB", width, height, 1, 3, 0, 0, 0)
    colour = bytes.fromhex(seed[:6])
    chunks = _chunk(b"IHDR", header) + _chunk(b"PLTE", colour) + _chunk(b"IDAT", _pixels(width, height))
    return b"\x89PNG\r\n\x1a\n" + chunks + _chunk(b"IEND", b"")


def video(body: dict[str, Any], model: str, key: str, created: int) -> LineResult:
    """A ``Video`` job, ``completed``, for a /v1/videos request, or a 400."""
    prompt = required_text(body, "prompt")
    seconds = str(body.get("seconds", "4"))
    if seconds not in VIDEO_SECONDS:
        raise LineError(f"Invalid value: '{seconds}'. Supported values are: '4', '8' and '12'.", "seconds")
    size = body.get("size", VIDEO_SIZES[0])
    if size not in VIDEO_SIZES:
        supported = ", ".join(f"'{s}'" for s in VIDEO_SIZES)
        raise LineError(f"Invalid value: '{size}'. Supported values are: {supported}.", "size")
    return LineResult(
        200,
        {
            "id": f"video_{digest(key)}",
            "object": "video",
            "model": model,
            "status": "completed",
            "progress": 100,
            "created_at": created,
            "completed_at": created,
            "expires_at": created + VIDEO_ASSETS_SECONDS,
            "prompt": prompt,
            "seconds": seconds,
            "size": size,
            "remixed_from_video_id": None,
            "error": None,
        },
    )
