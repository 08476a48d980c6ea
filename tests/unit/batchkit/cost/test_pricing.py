"""Cost: batch prices (with overrides and dated snapshots), the estimate before a run and the bill after."""

import pyarrow as pa
import pytest

from batchkit.cost.pricing import Estimate, estimate, price_of
from batchkit.cost.usage import total, usage_by_batch
from batchkit.errors import InputError
from batchkit.split.splitter import SplitConfig, split


def test_a_dated_snapshot_takes_its_longest_listed_prefix_and_overrides_win():
    assert price_of("gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"
    assert price_of("gpt-4o-2024-08-06").model == "gpt-4o"
    assert price_of("gpt-4omni") is None, "a prefix must end at a dash"
    assert price_of("ft:custom") is None
    assert price_of("gpt-4o-mini", {"gpt-4o-mini": {"input": 1, "output": 2}}).usd(1_000_000, 500_000) == 2.0


@pytest.mark.parametrize("bad", [{"input": -1, "output": 1}, {"input": "1", "output": 1}, {"input": 1}, 3])
def test_a_bad_price_override_is_named(bad):
    with pytest.raises(InputError, match="price of 'm' must be"):
        price_of("m", {"m": bad})


def test_the_estimate_takes_output_from_the_param_then_the_body_limit():
    body = {"max_completion_tokens": 40}
    by_limit = estimate("gpt-4o-mini", "/v1/chat/completions", 1000, 2_000_000, body)
    assert (by_limit.output_tokens, by_limit.input_usd, by_limit.output_usd) == (40_000, 0.15, 0.012)
    assert by_limit.usd == pytest.approx(0.162)
    expected = estimate("gpt-4o-mini", "/v1/chat/completions", 1000, 2_000_000, body, expected_output_tokens=5)
    assert expected.output_tokens == 5000 and "5 per request" in expected.output_basis
    unknown = estimate("gpt-4o-mini", "/v1/responses", 10, 1000)
    assert unknown.output_tokens is None and unknown.usd == unknown.input_usd and "not estimated" in unknown.describe()
    embeddings = estimate("text-embedding-3-small", "/v1/embeddings", 10, 1_000_000)
    assert (embeddings.output_tokens, embeddings.usd) == (0, 0.01)
    unpriced = estimate("my-model", "/v1/chat/completions", 10, 1000)
    assert unpriced.usd is None and "no batch price for model 'my-model'" in unpriced.describe()


def test_the_split_manifest_carries_the_estimate(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["one two three"] * 10})
    config = SplitConfig(model="gpt-4o-mini", prompt_column="text", body_options={"max_tokens": 7})
    manifest = split(str(src), tmp_path / "o", config)
    cost = Estimate(**manifest.estimate)
    assert (cost.requests, cost.output_tokens) == (10, 70)
    assert cost.input_tokens == manifest.totals["estimated_tokens"] > 0
    assert cost.usd == pytest.approx((cost.input_tokens * 0.075 + 70 * 0.30) / 1e6)


def test_actual_usage_is_summed_per_batch_and_priced_by_the_answering_model():
    results = pa.table(
        {
            "batch_id": ["b1", "b1", "b1", "b2", "b3"],
            "model": ["gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18", None, "mystery", None],
            "status": ["ok", "ok", "error", "ok", "error"],
            "prompt_tokens": [1_000_000, 1_000_000, None, 10, None],
            "completion_tokens": [500_000, 500_000, None, 5, None],
        }
    )
    used = usage_by_batch([results.slice(0, 3), results.slice(3)])  # a table at a time, each of whole batches
    assert used["b1"] == {
        "results": 3,
        "ok": 2,
        "prompt_tokens": 2_000_000,
        "completion_tokens": 1_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "usd": pytest.approx(0.45),
    }
    assert used["b2"]["usd"] is None and used["b3"]["usd"] == 0.0, "errors cost nothing"
    assert total([used["b1"], used["b3"]]) == {"prompt_tokens": 2_000_000, "completion_tokens": 1_000_000, "usd": 0.45}
    assert total(list(used.values()))["usd"] is None, "an unpriced model makes the total unknown"
