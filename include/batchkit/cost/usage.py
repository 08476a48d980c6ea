"""What a run actually used and paid: tokens and USD per batch, from the results the ledger recorded."""

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..results.answers import ResultStatus
from ..results.result_schema import CACHE_SCHEMA
from .pricing import DEFAULT_VENDOR, bill

USAGE_COLUMNS = ["batch_id", "model", "status", "prompt_tokens", "completion_tokens", *CACHE_SCHEMA.names]
_SUMMED = ["prompt_tokens", "completion_tokens", *CACHE_SCHEMA.names]


def usage_by_batch(
    results: Iterable[pa.Table], prices: dict[str, Any] | None = None, vendor: str = DEFAULT_VENDOR
) -> dict[str, dict[str, Any]]:
    """``batch_id -> {results, ok, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, model,
    usd}`` (``usd`` None: no price) at ``vendor``'s batch prices, from ledger tables read one at a time, each
    holding whole batches (``Ledger.each_result``): memory holds one batch's results, not the run's. Tables
    without the cache columns count no cached tokens."""
    found: dict[str, dict[str, Any]] = {}
    for table in results:
        if table.num_rows == 0:
            continue
        ok = pc.cast(pc.equal(table.column("status"), ResultStatus.OK.value), pa.int64())
        summed = [c for c in _SUMMED if c in table.column_names]
        grouped = (
            table.append_column("ok", ok)
            .group_by("batch_id")
            .aggregate([("ok", "sum"), ("ok", "count"), *((c, "sum") for c in summed), ("model", "max")])
        )
        for row in grouped.to_pylist():
            tokens = {c: row.get(f"{c}_sum") or 0 for c in _SUMMED}
            found[row["batch_id"]] = {
                "results": row["ok_count"],
                "ok": row["ok_sum"],
                **tokens,
                "model": row["model_max"],
                "usd": _bill(row["model_max"], tokens, prices, vendor),
            }
    return found


def _bill(model: str | None, tokens: dict[str, int], prices: dict[str, Any] | None, vendor: str) -> float | None:
    """The batch's cost; a batch that used no tokens (errors only) costs nothing, priced or not."""
    if not (tokens["prompt_tokens"] or tokens["completion_tokens"]):
        return 0.0
    prompt, completion, cached, written = (tokens[c] for c in _SUMMED)
    return bill(model, prompt, completion, prices, cached_tokens=cached, cache_write_tokens=written, vendor=vendor)


def total(usages: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of several usages; ``usd`` is None when any part could not be priced."""
    usds = [u["usd"] for u in usages]
    return {
        "prompt_tokens": sum(u["prompt_tokens"] for u in usages),
        "completion_tokens": sum(u["completion_tokens"] for u in usages),
        "usd": None if None in usds else round(sum(usds), 6),
    }
