"""Splits with image columns: image parts beside the prompt, rows with an unusable image skipped with their reason
(manifest, staged rows, merged table), image tokens in the estimates, and inline images cutting files by bytes."""

import base64
import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from batchkit.errors import InputError
from batchkit.results.merge import merge_partition
from batchkit.split.images import image_cells
from batchkit.split.source import SourceFile, rows_per_read
from batchkit.split.splitter import split
from batchkit.split.tokens import heuristic_tokens, image_tokens
from tests.helpers import split_config, split_lines


def png(size: tuple[int, int], noise: int = 0) -> bytes:
    """A PNG of ``size``; ``noise`` random bytes per pixel row make it about that large (incompressible)."""
    image = Image.new("RGB", size)
    if noise:
        rng = np.random.default_rng(noise)
        image = Image.frombytes("RGB", size, rng.integers(0, 256, size[0] * size[1] * 3, np.uint8).tobytes())
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_image_columns_add_image_parts_and_skip_rows_with_their_reason(tmp_path, write_parquet):
    photo = png((300, 200))
    src = write_parquet(
        "p.parquet",
        pa.table(
            {
                "id": ["a", "b", "c", "d", "e"],
                "text": ["what is it?", "and this?", None, "this?", "last"],
                "url": ["https://cdn.example/a.jpg", "https://cdn.example/b.jpg", "https://x/c", None, "https://x/e"],
                "raw": pa.array([photo, photo, photo, photo, b"not an image"], pa.binary()),
            }
        ),
    )
    config = split_config(id_column="id", image_columns=["url", "raw"], image_detail="high", keep_columns=["id"])
    manifest = split(str(src), tmp_path / "out", config)
    lines = split_lines(tmp_path / "out")
    assert [line["custom_id"] for line in lines] == ["a", "b"]
    content = lines[0]["body"]["messages"][0]["content"]
    data_url = "data:image/png;base64," + base64.b64encode(photo).decode()
    assert content == [
        {"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": "https://cdn.example/a.jpg", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": data_url, "detail": "high"}},
    ]
    skipped = manifest.skipped
    assert skipped.count == 3 and manifest.totals["rows_skipped"] == 3
    assert skipped.reasons == {
        "prompt is null or empty": 1,
        "image column 'url' is null": 1,
        "image column 'raw': not a PNG, JPEG, GIF or WebP image": 1,
    }
    assert [(e["row"], e["reason"]) for e in skipped.examples] == [
        (2, "prompt is null or empty"),
        (3, "image column 'url' is null"),
        (4, "image column 'raw': not a PNG, JPEG, GIF or WebP image"),
    ]
    assert manifest.parameters["image_columns"] == ["url", "raw"] and manifest.parameters["image_detail"] == "high"
    # the estimate: text as before, plus a default-size URL image and the 300 x 200 PNG, at gpt-4o-mini's rates
    texts = heuristic_tokens(pa.array(["what is it?", "and this?"]))
    images = image_tokens("gpt-4o-mini", "high", np.array([0, 300]), np.array([0, 200])).sum()
    assert manifest.totals["estimated_tokens"] == int(texts.sum() + 2 * images)

    rows = pq.read_table(tmp_path / "out" / "rows.parquet")
    assert rows.column("__skipped").to_pylist() == [None, None, *(e["reason"] for e in skipped.examples)]
    merged = tmp_path / "merged.parquet"
    merge_partition(str(tmp_path / "out" / "rows.parquet"), [], merged)
    table = pq.read_table(merged).sort_by("custom_id")
    assert "__skipped" not in table.column_names
    assert table.column("error_message").to_pylist()[2:] == [
        "not submitted: prompt is null or empty",
        "not submitted: image column 'url' is null",
        "not submitted: image column 'raw': not a PNG, JPEG, GIF or WebP image",
    ]
    assert table.column("error_code").to_pylist() == ["no_result", "no_result", "skipped", "skipped", "skipped"]


def test_without_image_columns_staged_rows_and_manifest_keep_their_shape(tmp_path, write_parquet):
    src = write_parquet("p.parquet", {"text": ["x", None]})
    manifest = split(str(src), tmp_path / "out", split_config())
    assert pq.read_schema(tmp_path / "out" / "rows.parquet").names == ["text", "__custom_id", "__fingerprint"]
    assert manifest.skipped.examples == [{"source": manifest.sources[0]["path"], "row": 1}]
    assert "image_columns" not in manifest.parameters


def test_inline_images_cut_files_by_bytes(tmp_path, write_parquet):
    images = [png((160, 160), noise=i + 1) for i in range(24)]  # ~77 KB each, ~103 KB as data URLs
    src = write_parquet("p.parquet", pa.table({"text": [f"row {i}" for i in range(24)], "img": images}))
    manifest = split(str(src), tmp_path / "out", split_config(image_columns=["img"], max_bytes=400_000))
    assert len(manifest.files) >= 6 and manifest.totals["requests"] == 24
    for entry in manifest.files:
        assert entry.bytes <= 400_000 == 400_000
        assert (tmp_path / "out" / entry.path).stat().st_size == entry.bytes
    lines = split_lines(tmp_path / "out")
    sent = [line["body"]["messages"][0]["content"][1]["image_url"]["url"] for line in lines]
    assert [base64.b64decode(url.split(",", 1)[1]) for url in sent] == images
    with pytest.raises(InputError, match=r"row 0: its request alone is [\d,]+ bytes, over the 50,000-byte limit"):
        split(str(src), tmp_path / "small", split_config(image_columns=["img"], max_bytes=50_000))


def test_wide_image_columns_read_fewer_rows_at_once(tmp_path, write_parquet):
    rows = 64
    images = [i.to_bytes(4, "big") + bytes((2 << 20) - 4) for i in range(rows)]  # distinct: no dictionary
    big = write_parquet("big.parquet", pa.table({"text": ["x"] * rows, "img": images}))
    file = SourceFile(0, str(big), rows)
    assert 14 <= rows_per_read(file, ["img"]) <= 16  # 32 MB of 2 MB images (and their pages)
    assert rows_per_read(file, []) == 4096


@pytest.mark.parametrize("endpoint", ["/v1/embeddings"])
def test_image_columns_need_an_endpoint_that_takes_images(tmp_path, endpoint):
    with pytest.raises(InputError, match="/v1/embeddings takes no images: image columns work on"):
        split_config(endpoint=endpoint, image_columns=["img"])
    with pytest.raises(InputError, match="named more than once"):
        split_config(image_columns=["img", "img"])
    with pytest.raises(InputError, match="image detail must be one of"):
        split_config(image_columns=["img"], image_detail="max")


def test_a_missing_image_column_is_named(tmp_path, write_parquet):
    src = write_parquet("p.parquet", {"text": ["x"]})
    with pytest.raises(InputError, match=r"column\(s\) 'photo' not found"):
        split(str(src), tmp_path / "o", split_config(image_columns=["photo"]))


def test_moderation_requests_carry_images_as_multi_modal_input(tmp_path, write_parquet):
    src = write_parquet("p.parquet", {"text": ["is this fine?"], "url": ["https://cdn.example/a.png"]})
    config = split_config(model="omni-moderation-latest", endpoint="/v1/moderations", image_columns=["url"])
    manifest = split(str(src), tmp_path / "o", config)
    assert split_lines(tmp_path / "o")[0]["body"] == {
        "model": "omni-moderation-latest",
        "input": [
            {"type": "text", "text": "is this fine?"},
            {"type": "image_url", "image_url": {"url": "https://cdn.example/a.png"}},
        ],
    }
    assert manifest.estimate["usd"] == 0 and manifest.estimate["output_tokens"] == 0  # moderations are free
    assert image_cells(pa.array(["https://cdn.example/a.png"]), "url").reasons == {}
