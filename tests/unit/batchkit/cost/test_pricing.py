"""Cost: batch prices per vendor from genai-prices' bundled data (with overrides, deployment mappings and dated
snapshots), cached input priced as such, the estimate before a run and the bill after."""

import subprocess
import sys
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from genai_prices import Usage, calc_price

from batchkit.cost.pricing import Estimate, bill, estimate, price_of
from batchkit.cost.usage import total, usage_by_batch
from batchkit.errors import InputError
from batchkit.split.splitter import SplitConfig, split

BATCH = {"processing": "batch"}


def test_openai_prices_are_genai_prices_batch_rates_and_a_dated_snapshot_takes_its_models():
    mini = price_of("gpt-4o-mini")
    assert (mini.model, mini.input, mini.output, mini.cached_input) == ("gpt-4o-mini", 0.075, 0.3, 0.075)
    assert mini.source.startswith("genai-prices ") and "its batch price" in mini.source
    assert price_of("gpt-4o-mini-2024-07-18") == mini
    assert price_of("gpt-4o-2024-08-06").model == "gpt-4o"
    embeddings = price_of("text-embedding-3-small")  # genai-prices has no batch rate: OpenAI's documented 50%
    assert (embeddings.input, embeddings.output) == (0.01, 0.0) and "50% of the standard" in embeddings.source


def test_anthropic_prices_are_its_message_batches_rates_cache_reads_and_writes_included():
    sonnet = price_of("claude-sonnet-4-5", vendor="anthropic")
    assert (sonnet.input, sonnet.output, sonnet.cached_input, sonnet.cache_write) == (1.5, 7.5, 0.15, 1.875)
    assert price_of("claude-sonnet-4-5-20250929", vendor="anthropic") == sonnet
    haiku = price_of("claude-haiku-4-5", vendor="anthropic")
    assert (haiku.input, haiku.output, haiku.cached_input, haiku.cache_write) == (0.5, 2.5, 0.05, 0.625)
    assert price_of("gpt-4o-mini", vendor="anthropic") is None, "a vendor prices only the models it serves"


@pytest.mark.parametrize(
    ("vendor", "model", "usage"),
    [
        ("anthropic", "claude-sonnet-4-5", (10_000, 2_000, 4_000, 1_000)),
        ("openai", "gpt-5", (10_000, 2_000, 8_000, 0)),
        ("openai", "gpt-4o-mini", (10_000, 2_000, 3_000, 0)),
    ],
)
def test_the_bill_agrees_with_genai_prices_own_batch_calculation(vendor, model, usage):
    prompt, completion, cached, written = usage  # prompt: all input tokens, as genai-prices counts them too
    theirs = calc_price(
        Usage(input_tokens=prompt, output_tokens=completion, cache_read_tokens=cached, cache_write_tokens=written),
        model,
        provider_id=vendor,
        genai_request_timestamp=datetime.now(UTC),
        price_context=BATCH,
    )
    ours = bill(model, prompt, completion, cached_tokens=cached, cache_write_tokens=written, vendor=vendor)
    assert ours == pytest.approx(float(theirs.total_price), rel=1e-12)


def test_cached_input_is_cheaper_and_anthropic_cache_writes_dearer():
    full = bill("gpt-5", 1_000_000, 0)
    cached = bill("gpt-5", 1_000_000, 0, cached_tokens=800_000)
    assert (full, cached) == (pytest.approx(0.625), pytest.approx(0.2 * 0.625 + 0.8 * 0.0625))
    plain = bill("claude-sonnet-4-5", 1_000, 0, vendor="anthropic")
    read = bill("claude-sonnet-4-5", 1_000, 0, cached_tokens=1_000, vendor="anthropic")
    written = bill("claude-sonnet-4-5", 1_000, 0, cache_write_tokens=1_000, vendor="anthropic")
    assert read < plain < written


def test_an_azure_deployment_is_priced_as_its_mapped_model_at_half_the_standard_rate():
    same_name = price_of("gpt-4o", vendor="azure")  # a deployment named after its model: the OpenAI model
    assert (same_name.input, same_name.output, same_name.cached_input) == (1.25, 5.0, 0.625)
    assert "50% of the standard" in same_name.source
    assert price_of("prod-4o", vendor="azure") is None, "an unmapped deployment name has no price"
    mapped = {"prod-4o": {"model": "gpt-4o"}}
    assert price_of("prod-4o", mapped, "azure") == same_name
    assert bill("prod-4o", 1_000_000, 1_000_000, mapped, cached_tokens=500_000, vendor="azure") == pytest.approx(
        0.5 * 1.25 + 0.5 * 0.625 + 5.0
    )


def test_overrides_win_map_names_and_price_dated_snapshots():
    mine = {"gpt-4o-mini": {"input": 1, "output": 2}}
    assert price_of("gpt-4o-mini", mine).usd(1_000_000, 500_000) == 2.0
    assert price_of("gpt-4o-mini-2024-07-18", mine).source == "override"
    cached = price_of("claude-sonnet-4-5", {"claude-sonnet-4-5": {"input": 1, "output": 2, "cached_input": 0.1}})
    assert cached.usd(1_000_000, 0, cached_tokens=1_000_000) == pytest.approx(0.1), "overrides hold for any vendor"
    assert price_of("m", {"m": {"input": 1, "output": 2}}).usd(1_000_000, 0, cached_tokens=500_000) == 1.0
    to_override = {"eu-deploy": {"model": "my-ft"}, "my-ft": {"input": 3, "output": 4}}
    assert price_of("eu-deploy", to_override, "azure").input == 3
    assert price_of("gpt-4omni") is None, "a prefix must end at a dash"
    assert price_of("ft:custom") is None and price_of("my-model", vendor="anthropic") is None


@pytest.mark.parametrize(
    "bad",
    [
        {"input": -1, "output": 1},
        {"input": "1", "output": 1},
        {"input": 1},
        3,
        {"input": 1, "output": 1, "cached_input": -0.1},
        {"model": ""},
        {"model": 4},
    ],
)
def test_a_bad_price_override_is_named(bad):
    with pytest.raises(InputError, match="price of 'm' must be"):
        price_of("m", {"m": bad})


def test_an_unknown_vendor_is_refused():
    with pytest.raises(InputError, match="unknown vendor 'bedrock'"):
        price_of("gpt-4o-mini", vendor="bedrock")
    with pytest.raises(InputError, match="unknown vendor"):
        SplitConfig(model="m", prompt_column="text", vendor="bedrock")


def test_prices_are_read_from_the_bundled_data_with_the_network_blocked():
    """A fresh interpreter with every socket refused, and a downloaded snapshot in place (as genai-prices'
    ``UpdatePrices`` leaves one): the prices are still the bundled ones."""
    code = """
import socket
def refuse(*a, **k):
    raise OSError("network blocked by the test")
socket.socket.connect = socket.socket.connect_ex = socket.create_connection = socket.getaddrinfo = refuse
from genai_prices.data_snapshot import DataSnapshot, set_custom_snapshot
set_custom_snapshot(DataSnapshot(providers=[], from_auto_update=True))
from batchkit.cost.pricing import bill, price_of
print(price_of("gpt-4o-mini").input, price_of("claude-sonnet-4-5", vendor="anthropic").output, bill("gpt-4o", 10**6, 0, vendor="azure"))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.075", "7.5", "1.25"]


def test_the_estimate_takes_output_from_the_param_then_the_body_limit():
    body = {"max_completion_tokens": 40}
    by_limit = estimate("gpt-4o-mini", "/v1/chat/completions", 1000, 2_000_000, body)
    assert (by_limit.output_tokens, by_limit.input_usd, by_limit.output_usd) == (40_000, 0.15, 0.012)
    assert by_limit.usd == pytest.approx(0.162) and by_limit.vendor == "openai"
    expected = estimate("gpt-4o-mini", "/v1/chat/completions", 1000, 2_000_000, body, expected_output_tokens=5)
    assert expected.output_tokens == 5000 and "5 per request" in expected.output_basis
    unknown = estimate("gpt-4o-mini", "/v1/responses", 10, 1000)
    assert unknown.output_tokens is None and unknown.usd == unknown.input_usd and "not estimated" in unknown.describe()
    embeddings = estimate("text-embedding-3-small", "/v1/embeddings", 10, 1_000_000)
    assert (embeddings.output_tokens, embeddings.usd) == (0, 0.01)
    unpriced = estimate("my-model", "/v1/chat/completions", 10, 1000)
    assert unpriced.usd is None and "no batch price for model 'my-model' on openai" in unpriced.describe()
    claude = estimate(
        "claude-haiku-4-5", "/v1/chat/completions", 10, 1_000_000, {"max_tokens": 100}, vendor="anthropic"
    )
    assert (claude.input_usd, claude.output_usd, claude.price["source"][:12]) == (0.5, 0.0025, "genai-prices")


def test_a_manifest_written_before_vendors_still_reads():
    old = estimate("gpt-4o-mini", "/v1/chat/completions", 1, 10).to_dict()
    del old["vendor"]
    assert Estimate(**old).vendor == "openai"


def test_the_split_manifest_carries_the_estimate_at_the_vendors_prices(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["one two three"] * 10})
    config = SplitConfig(model="gpt-4o-mini", prompt_column="text", body_options={"max_tokens": 7})
    manifest = split(str(src), tmp_path / "o", config)
    cost = Estimate(**manifest.estimate)
    assert (cost.requests, cost.output_tokens) == (10, 70)
    assert cost.input_tokens == manifest.totals["estimated_tokens"] > 0
    assert cost.usd == pytest.approx((cost.input_tokens * 0.075 + 70 * 0.30) / 1e6)
    config = SplitConfig(
        model="claude-sonnet-4-5", prompt_column="text", body_options={"max_tokens": 7}, vendor="anthropic"
    )
    claude = Estimate(**split(str(src), tmp_path / "c", config).estimate)
    assert claude.vendor == "anthropic" and claude.usd == pytest.approx((claude.input_tokens * 1.5 + 70 * 7.5) / 1e6)


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
        "cached_tokens": 0,  # a table without the cache columns (a ledger from before them): none cached
        "cache_write_tokens": 0,
        "model": "gpt-4o-mini-2024-07-18",
        "usd": pytest.approx(0.45),
    }
    assert used["b2"]["usd"] is None and used["b3"]["usd"] == 0.0, "errors cost nothing"
    assert total([used["b1"], used["b3"]]) == {"prompt_tokens": 2_000_000, "completion_tokens": 1_000_000, "usd": 0.45}
    assert total(list(used.values()))["usd"] is None, "an unpriced model makes the total unknown"


def test_the_bill_prices_cached_tokens_per_vendor():
    results = pa.table(
        {
            "batch_id": ["b1", "b1"],
            "model": ["claude-sonnet-4-5-20250929"] * 2,
            "status": ["ok", "ok"],
            "prompt_tokens": [600_000, 400_000],
            "completion_tokens": [100_000, 100_000],
            "cached_tokens": [500_000, None],
            "cache_write_tokens": [None, 100_000],
        }
    )
    used = usage_by_batch([results], vendor="anthropic")["b1"]
    assert (used["cached_tokens"], used["cache_write_tokens"]) == (500_000, 100_000)
    assert used["usd"] == pytest.approx(0.4 * 1.5 + 0.5 * 0.15 + 0.1 * 1.875 + 0.2 * 7.5)
    assert usage_by_batch([results])["b1"]["usd"] is None, "a Claude model has no OpenAI price"
