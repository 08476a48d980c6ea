"""Batch prices per vendor from ``genai-prices`` (pydantic's maintained price data), read from the snapshot bundled
with the installed package: never fetched at run time (a deployment may be offline, and a bill must not change
because a download did).

The batch rate of a model is genai-prices' own batch price where it has one for that vendor's model (its
``{"processing": "batch"}`` variant: OpenAI and Anthropic), else 50% of every token rate it lists (the documented
Batch discount of OpenAI, Anthropic's Message Batches and Azure OpenAI global batch, cache reads and writes
included). A price tier that starts at a prompt length (e.g. Claude's over-200k-token rates) is not applied:
every request is priced at the base rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot

VENDORS = {"openai": "openai", "anthropic": "anthropic", "azure": "azure"}  # ours -> genai-prices provider id
BATCH = {"processing": "batch"}  # genai-prices' price context of batch API usage
BATCH_DISCOUNT = Decimal("0.5")  # where genai-prices has no batch price: the vendors' documented 50%


@dataclass(frozen=True)
class Rates:
    """USD per 1M tokens at batch prices, and where they came from."""

    model: str  # the genai-prices model that priced it
    input: float
    output: float
    cached_input: float  # an input token read from the prompt cache
    cache_write: float  # an input token written to the prompt cache (Anthropic)
    source: str


def check_vendor(vendor: str) -> str:
    if vendor not in VENDORS:
        raise InputError(f"unknown vendor {vendor!r}: prices are known for {', '.join(VENDORS)}")
    return vendor


def batch_rates(vendor: str, model: str, when: datetime | None = None) -> Rates | None:
    """The batch rates of ``model`` on ``vendor`` (Azure: a model name; genai-prices falls back from Azure to the
    OpenAI model of that name), or None when genai-prices does not list it or gives it no token price."""
    provider_id = VENDORS[check_vendor(vendor)]
    try:
        provider, info = bundled().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    when = when or datetime.now(UTC)
    own = any(info is m for m in provider.models)  # a fallback provider's variants are not this vendor's
    has_batch = own and any(
        v.when == BATCH and (v.constraint is None or v.constraint.active(when)) for v in info.price_variants or ()
    )
    prices = info.get_prices(when, BATCH if has_batch else None)
    factor = Decimal(1) if has_batch else BATCH_DISCOUNT
    input_rate = _rate(prices.input_mtok, factor)
    if input_rate is None:
        return None
    cached = _rate(prices.cache_read_mtok, factor)
    return Rates(
        model=info.id,
        input=input_rate,
        output=_rate(prices.output_mtok, factor) or 0.0,
        cached_input=input_rate if cached is None else min(cached, input_rate),
        cache_write=_rate(prices.cache_write_mtok, factor) or input_rate,
        source=f"genai-prices {version()} ({'its batch price' if has_batch else '50% of the standard price'})",
    )


def _rate(price: Any, factor: Decimal) -> float | None:
    """USD per 1M tokens: a flat price, or the base of a tiered one."""
    if price is None:
        return None
    return float(getattr(price, "base", price) * factor)


@cache
def bundled() -> DataSnapshot:
    """The price data shipped inside the installed genai-prices. Not ``genai_prices.calc_price``: that reads
    whatever snapshot ``UpdatePrices`` last downloaded, if anything in the process started one."""
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    return DataSnapshot(providers=providers, from_auto_update=False)


@cache
def version() -> str:
    from importlib.metadata import version

    return version("genai-prices")
