"""Generate realistic sample partitions: review-like text, 200-2,000 characters, some non-ASCII."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_WORDS = [
    "the",
    "a",
    "delivery",
    "arrived",
    "quickly",
    "and",
    "the",
    "product",
    "works",
    "as",
    "described",
    "but",
    "packaging",
    "was",
    "damaged",
    "customer",
    "service",
    "answered",
    "within",
    "a",
    "day",
    "refund",
    "battery",
    "lasts",
    "longer",
    "than",
    "expected",
    "screen",
    "quality",
    "excellent",
    "price",
    "fair",
    "would",
    "buy",
    "again",
    "not",
    "recommended",
    "size",
    "runs",
    "small",
    "colour",
    "differs",
    "from",
    "photo",
    "café",
    "naïve",
    "façade",
    "déjà",
    "vu",
    "über",
    "straße",
    "東京",
    "駅",
    "ありがとう",
    "Привет",
    "мир",
    "مرحبا",
    "بالعالم",
    "שלום",
    "🎉",
    "👍",
    '"quoted"',
    "back\\slash",
]


def write_sample_partition(
    directory: str | Path, rows: int, files: int = 4, seed: int = 7, rows_per_group: int = 50_000
) -> list[Path]:
    """Write ``rows`` rows as ``files`` Parquet files (``part-NNNNN.parquet``) with columns
    ``review_id`` (unique int64), ``product``, ``stars`` and ``text``; deterministic for a seed."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    words = np.array(_WORDS, dtype=object)
    paths, next_id = [], 0
    for index in range(files):
        count = rows // files + (1 if index < rows % files else 0)
        path = out / f"part-{index:05d}.parquet"
        with pq.ParquetWriter(path, _SCHEMA) as writer:
            for chunk_start in range(0, count, rows_per_group):
                n = min(rows_per_group, count - chunk_start)
                writer.write_table(_chunk(rng, words, next_id, n))
                next_id += n
        paths.append(path)
    return paths


_SCHEMA = pa.schema([("review_id", pa.int64()), ("product", pa.string()), ("stars", pa.int8()), ("text", pa.string())])


def _chunk(rng: np.random.Generator, words: np.ndarray, first_id: int, n: int) -> pa.Table:
    lengths = rng.integers(200, 2000, n)
    pool = " ".join(rng.choice(words, 600_000).tolist())
    starts = rng.integers(0, len(pool) - 2000, n)
    texts = [pool[s : s + length] for s, length in zip(starts.tolist(), lengths.tolist())]
    return pa.table(
        {
            "review_id": pa.array(np.arange(first_id, first_id + n), pa.int64()),
            "product": pa.array([f"SKU-{p:05d}" for p in rng.integers(0, 5000, n).tolist()]),
            "stars": pa.array(rng.integers(1, 6, n), pa.int8()),
            "text": pa.array(texts),
        },
        schema=_SCHEMA,
    )
