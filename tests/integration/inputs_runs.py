"""The DAG runs with image inputs and moderations (run on ``test_dag_e2e``'s stack): their partitions (a product
catalogue whose photos are data URLs of real PNGs, one an http URL, one missing; user posts with attachments, some
naming a moderation category in their text or their image URL), their Params and the checks of what they loaded."""

import base64
import io
import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from batchkit.split.tokens import image_tokens

ROWS = 30
PHOTOS = {"id_column": "sku", "prompt_template": "Name this product: {title}", "system_prompt": ""}
PHOTOS |= {"input_columns": ["sku", "title"], "image_columns": ["photo"], "image_detail": "high"}
PHOTOS |= {"target_table": "product_photos", "max_error_rate": 0.2}
POSTS = {"id_column": "post_id", "endpoint": "/v1/moderations", "model": "omni-moderation-latest"}
POSTS |= {"prompt_column": "body", "prompt_template": "", "system_prompt": "", "body_options": {}}
POSTS |= {"image_columns": ["attachment"], "target_table": "moderated_posts", "max_error_rate": 0.2}

PHOTO_SIZES = [(64, 64), (600, 300), (1024, 1024), (2048, 512)]  # 1, 2, 4 and 6 tiles at detail high


def png_data_url(size: tuple[int, int], shade: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (shade, 120, 200)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def write_catalogue(folder: Path, rows: int = ROWS) -> dict[str, tuple[int, int]]:
    """``rows`` products: ``sku``, ``title``, ``photo`` (a PNG data URL; the second last an https URL, the last
    null). Returns each data URL photo's size by sku."""
    sizes = {f"sku-{i:03d}": PHOTO_SIZES[i % len(PHOTO_SIZES)] for i in range(rows - 2)}
    photos = [png_data_url(size, i % 250) for i, size in enumerate(sizes.values())]
    photos += ["https://cdn.example/catalogue/last-but-one.jpg", None]
    table = pa.table(
        {
            "sku": [f"sku-{i:03d}" for i in range(rows)],
            "title": [f"Product {i}" for i in range(rows)],
            "photo": pa.array(photos, pa.string()),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-0.parquet")
    return sizes


def flagged_post(i: int) -> bool:
    """Posts whose text (every 5th) or attachment URL (every 7th) names violence."""
    return i % 5 == 0 or i % 7 == 0


def write_posts(folder: Path, rows: int = ROWS) -> None:
    """``rows`` posts: ``post_id``, ``body``, ``attachment`` (an https image URL)."""
    bodies = [
        "This post glorifies violence." if i % 5 == 0 else f"Lovely weather at the lake, post {i}." for i in range(rows)
    ]
    attachments = [f"https://cdn.example/{'violence' if i % 7 == 0 else 'lake'}/{i}.jpg" for i in range(rows)]
    table = pa.table({"post_id": [f"post-{i:03d}" for i in range(rows)], "body": bodies, "attachment": attachments})
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-0.parquet")


def check_photos(database: Path, partition: str, sizes: dict[str, tuple[int, int]], estimate: dict) -> str:
    """Every row loaded once; the row without a photo skipped with its reason; each answer metered with its image
    (the emulator counts image tokens by size, as the estimate does). Returns the figures."""
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(
            "SELECT sku, status, error_code, error_message, response_text, prompt_tokens FROM product_photos "
            "WHERE partition_key = ? ORDER BY sku",
            [partition],
        ).fetchall()
    assert len(rows) == ROWS
    skipped = [r[:4] for r in rows if r[2] == "skipped"]
    assert skipped == [(f"sku-{ROWS - 1:03d}", "error", "skipped", "not submitted: image column 'photo' is null")]
    ok = {sku: (text, tokens) for sku, status, _, _, text, tokens in rows if status == "ok"}
    assert len(ok) >= ROWS - 5 and all(text.endswith("[1 image]") for text, _ in ok.values())
    for sku, size in sizes.items():
        if sku in ok:
            image = int(image_tokens("gpt-4o-mini", "high", *(np.array([n]) for n in size))[0])
            assert image < ok[sku][1] < image + 40, (sku, size, ok[sku][1])
    sent = sum(tokens for _, tokens in ok.values())
    assert abs(estimate["input_tokens"] / (ROWS - 1) - sent / len(ok)) < 0.1 * sent / len(ok)
    return f"{len(ok)} ok, {sent:,} prompt tokens; estimated {estimate['input_tokens']:,} for {ROWS - 1} requests"


def check_posts(database: Path, partition: str) -> int:
    """Typed moderation columns, each ok row flagged (for violence) exactly when its text or image names it.
    Returns the ok rows."""
    with duckdb.connect(str(database), read_only=True) as con:
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'moderated_posts'"
            ).fetchall()
        )
        rows = con.execute(
            "SELECT post_id, status, flagged, categories, category_scores FROM moderated_posts WHERE partition_key = ?",
            [partition],
        ).fetchall()
    assert (types["flagged"], types["categories"], types["category_scores"]) == ("BOOLEAN", "VARCHAR[]", "VARCHAR")
    ok = [r for r in rows if r[1] == "ok"]
    assert len(rows) == ROWS and len(ok) >= ROWS - 5
    for post_id, _, flagged, categories, scores in ok:
        expected = flagged_post(int(post_id.split("-")[1]))
        assert (flagged, categories) == (expected, ["violence"] if expected else []), post_id
        assert (json.loads(scores)["violence"] >= 0.9) == expected
    return len(ok)
