"""Token estimates for batch requests: a fast heuristic, or exact counts with an offline tokenizer.

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
