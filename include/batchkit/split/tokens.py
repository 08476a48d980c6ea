"""Token estimates for batch requests: a fast heuristic, or exact counts with an offline tokenizer, plus each
image's tokens by OpenAI's published formula (``image_tokens``).

The exact counter uses tiktoken with the BPE files shipped inside the ``bpe-openai`` wheel, copied
into tiktoken's cache so ``tiktoken`` never downloads anything at run time.
"""

import gzip
import hashlib
import importlib.resources
import os
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import SetupError
from ..results.arrow_numpy import numbers

# Per-request overhead of the chat format (role markers, priming) added to every estimate.
REQUEST_OVERHEAD_TOKENS = 8
CHARS_PER_TOKEN = 4

_BPE_FILES = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}


def heuristic_tokens(prompts: pa.Array, fixed_chars: int = 0) -> np.ndarray:
    """Estimate tokens as ceil(characters / 4) plus a per-request overhead, vectorised."""
    chars = numbers(pc.utf8_length(prompts))
    return (chars + fixed_chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN + REQUEST_OVERHEAD_TOKENS


def exact_tokens(prompts: pa.Array, model: str, fixed_text: str = "") -> np.ndarray:
    """Count tokens with the model's real tokenizer (o200k_base or cl100k_base), offline."""
    encoding = encoding_for_model(model)
    texts = [p or "" for p in prompts.to_pylist()]
    counts = np.fromiter((len(t) for t in encoding.encode_ordinary_batch(texts, num_threads=2)), np.int64, len(texts))
    fixed = len(encoding.encode_ordinary(fixed_text)) if fixed_text else 0
    return counts + fixed + REQUEST_OVERHEAD_TOKENS


# Images, as OpenAI's vision guide counts them ("Calculating costs"). Tile models: the image is scaled into a
# 2048 x 2048 square, then so that its short side is at most 768 px; each 512 px tile costs ``tile`` tokens on top
# of ``base`` (``detail: low``: ``base`` alone). Patch models: 32 px patches, at most 1,536 (a larger image is scaled
# down to fit), times the model's multiplier, whatever the detail. ``detail: auto`` is counted as high (the model
# chooses; an upper bound). An image whose size is not known here (an http URL) is counted as DEFAULT_IMAGE_SIZE.
DEFAULT_IMAGE_SIZE = (1024, 1024)
_TILES = {  # model family -> (base, per tile); the longest family a model name starts with wins
    "gpt-4o": (85, 170),
    "gpt-4.1": (85, 170),
    "gpt-4.5": (85, 170),
    "gpt-4o-mini": (2833, 5667),
    "gpt-5": (70, 140),
    "o1": (75, 150),
    "o3": (75, 150),
    "computer-use-preview": (65, 129),
}
_PATCHES = {"gpt-4.1-mini": 1.62, "gpt-4.1-nano": 2.46, "o4-mini": 1.72, "gpt-5-mini": 1.62, "gpt-5-nano": 2.46}
_DEFAULT_TILES = _TILES["gpt-4o"]  # a model of no known family (or an Azure deployment name)
MAX_PATCHES = 1536


def image_tokens(model: str, detail: str, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Estimated input tokens of each image (``width``/``height`` in pixels; 0: unknown, counted as
    ``DEFAULT_IMAGE_SIZE``) sent to ``model`` at ``detail`` (auto, low, high)."""
    known = (width > 0) & (height > 0)
    w = np.where(known, width, DEFAULT_IMAGE_SIZE[0]).astype(np.float64)
    h = np.where(known, height, DEFAULT_IMAGE_SIZE[1]).astype(np.float64)
    family = max((f for f in (*_TILES, *_PATCHES) if model == f or model.startswith(f + "-")), key=len, default="")
    if family in _PATCHES:
        return np.ceil(_patches(w, h) * _PATCHES[family]).astype(np.int64)
    base, tile = _TILES.get(family, _DEFAULT_TILES)
    if detail == "low":
        return np.full(len(w), base, np.int64)
    fit = np.minimum(1.0, 2048 / np.maximum(w, h))  # into the 2048 square
    w, h = np.floor(w * fit), np.floor(h * fit)
    short = np.minimum(1.0, 768 / np.maximum(np.minimum(w, h), 1))  # short side at most 768
    w, h = np.floor(w * short), np.floor(h * short)
    return (base + tile * np.ceil(w / 512) * np.ceil(h / 512)).astype(np.int64)


def _patches(w: np.ndarray, h: np.ndarray) -> np.ndarray:
    raw = np.ceil(w / 32) * np.ceil(h / 32)
    shrink = np.sqrt(32 * 32 * MAX_PATCHES / (w * h))
    shrink *= np.minimum(np.floor(w * shrink / 32) / (w * shrink / 32), np.floor(h * shrink / 32) / (h * shrink / 32))
    scaled = np.ceil(np.floor(w * shrink) / 32) * np.ceil(np.floor(h * shrink) / 32)
    return np.minimum(np.where(raw > MAX_PATCHES, scaled, raw), MAX_PATCHES)


@cache
def encoding_for_model(model: str):  # -> tiktoken.Encoding
    """Return the tiktoken encoding for ``model``; unknown models get o200k_base (current OpenAI models)."""
    import tiktoken

    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = "o200k_base"
    if name not in _BPE_FILES:
        name = "o200k_base"
    cache_dir = _install_offline_bpe(name)
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    try:
        return tiktoken.get_encoding(name)
    finally:
        if previous is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous


def _install_offline_bpe(name: str) -> Path:
    """Place the verified BPE file where tiktoken's cache looks for it; return the cache directory."""
    url, sha256 = _BPE_FILES[name]
    cache_dir = Path(os.environ.get("BATCHKIT_CACHE_DIR", Path(tempfile.gettempdir()) / "batchkit-cache")) / "tiktoken"
    target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
        return cache_dir
    packaged = importlib.resources.files("bpe_openai") / "data" / f"{name}.tiktoken.gz"
    data = gzip.decompress(packaged.read_bytes())
    if hashlib.sha256(data).hexdigest() != sha256:
        raise SetupError(f"the {name} tokenizer file shipped with bpe-openai does not match tiktoken's hash")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    return cache_dir
