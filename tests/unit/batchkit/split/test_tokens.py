"""Image token estimates: OpenAI's vision guide's own worked examples, per model family and detail."""

import numpy as np
import pytest

from batchkit.split.tokens import DEFAULT_IMAGE_SIZE, image_tokens


def tokens(model: str, detail: str, *sizes: tuple[int, int]) -> list[int]:
    width, height = np.array([w for w, _ in sizes]), np.array([h for _, h in sizes])
    return image_tokens(model, detail, width, height).tolist()


def test_tile_models_follow_the_guides_examples():
    # 1024 x 1024 -> 768 x 768: 4 tiles; 2048 x 4096 -> 1024 x 2048 -> 768 x 1536: 6 tiles
    assert tokens("gpt-4o", "high", (1024, 1024), (2048, 4096)) == [85 + 4 * 170, 85 + 6 * 170]
    assert tokens("gpt-4o-2024-08-06", "auto", (128, 64)) == [85 + 170]  # small images are not scaled up
    assert tokens("gpt-4.1", "low", (4096, 4096)) == [85]  # low: the base alone, whatever the size
    assert tokens("gpt-4o-mini", "high", (1024, 1024)) == [2833 + 4 * 5667]
    assert tokens("gpt-5", "high", (512, 512)) == [70 + 140]
    assert tokens("o3-2025-04-16", "high", (512, 513)) == [75 + 2 * 150]


def test_patch_models_count_32px_patches_times_their_multiplier():
    # 1024 x 1024: 1,024 patches; 1800 x 2400: scaled to fit 1,536 patches -> 1,452 (the guide's example)
    assert tokens("gpt-4.1-mini", "high", (1024, 1024), (1800, 2400)) == [
        int(np.ceil(1024 * 1.62)),
        int(np.ceil(1452 * 1.62)),
    ]
    assert tokens("gpt-4.1-nano", "low", (100, 100)) == [int(np.ceil(16 * 2.46))]  # detail does not change patches
    assert tokens("o4-mini", "high", (10_000, 10_000)) == [int(np.ceil(39 * 39 * 1.72))]  # 1,248 px: 39 x 39


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini", "my-azure-deployment"])
def test_unknown_sizes_count_as_the_default_image(model):
    assert tokens(model, "high", (0, 0)) == tokens(model, "high", DEFAULT_IMAGE_SIZE)
    assert tokens("my-azure-deployment", "high", (1024, 1024)) == tokens("gpt-4o", "high", (1024, 1024))
