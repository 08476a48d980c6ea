"""What a run actually used and paid: tokens and USD per batch, from the results the ledger recorded."""

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..results.answers import ResultStatus
from .pricing import bill

USAGE_COLUMNS = ["batch_id", "model", "status", "prompt_tokens", "completion_tokens"]


def usage_by_batch(results: Iterable[pa.Table], prices: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``batch_id -> {results, ok, prompt_tokens, completion_tokens, model, usd}`` (``usd`` None: no price), from
    ledger tables read one at a time, each holding whole batches (``Ledger.each_result``): memory holds one
    batch's results, not the run's."""
    found: dict[str, dict[str, Any]] = {}
    for table in results:
        if table.num_rows == 0:
            continue
        ok = pc.cast(pc.equal(table.column("status"), ResultStatus.OK.value), pa.int64())
        grouped = (
            table.append_column("ok", ok)
            .group_by("batch_id")
            .aggregate(
                [
                    ("ok", "sum"),
                    ("ok", "count"),
                    ("prompt_tokens", "sum"),
                    ("completion_tokens", "sum"),
                    ("model", "max"),
                ]
            )
        )
        for row in grouped.to_pylist():
            prompt, completion = row["prompt_tokens_sum"] or 0, row["completion_tokens_sum"] or 0
            found[row["batch_id"]] = {
                "results": row["ok_count"],
                "ok": row["ok_sum"],
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "model": row["model_max"],
                "usd": bill(row["model_max"], prompt, completion, prices) if prompt or completion else 0.0,
            }
    return found


def total(usages: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of several usages; ``usd`` is None when any part could not be priced."""
    usds = [u["usd"] for u in usages]
    return {
        "prompt_tokens": sum(u["prompt_tokens"] for u in usages),
        "completion_tokens": sum(u["completion_tokens"] for u in usages),
        "usd": None if None in usds else round(sum(usds), 6),
    }
