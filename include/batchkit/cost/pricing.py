"""What a batch costs: batch prices per vendor and model, an estimate before submitting and the bill after.

Prices are USD per 1M tokens at the vendor's **batch** rate, from genai-prices' bundled data
(``batchkit.cost.price_source``; never fetched at run time). A deployment overrides or extends them with
``{"model": {"input": x, "output": y, "cached_input": z}}`` (``cached_input`` optional: an input token read from
the prompt cache, default ``input``; ``cache_write`` likewise for Anthropic's cache writes), the
``openai_batch_prices`` Airflow Variable or ``batchkit split --prices``; overrides win. An entry
``{"name": {"model": "gpt-4o"}}`` prices ``name`` as that model: an Azure deployment name mapped to the model it
serves (a deployment with no entry is priced as the OpenAI model of the same name). An override named ``m`` also
prices the dated snapshots ``m-...`` (the longest such name wins). Moderation models (``omni-moderation-*``,
``text-moderation-*``) are free, as OpenAI prices them, unless an override says otherwise.
"""

from dataclasses import asdict, dataclass
from typing import Any

from ..batch_api import Endpoint
from ..errors import InputError
from .price_source import batch_rates, check_vendor

_OUTPUT_LIMITS = ("max_completion_tokens", "max_tokens", "max_output_tokens")  # chat (new, old), responses
_RATES = ("input", "output", "cached_input", "cache_write")
DEFAULT_VENDOR = "openai"
_FREE = ("omni-moderation", "text-moderation")  # the moderation models


@dataclass(frozen=True)
class Price:
    model: str  # the override or genai-prices model that priced it
    input: float  # USD per 1M input tokens
    output: float  # USD per 1M output tokens
    cached_input: float | None = None  # USD per 1M input tokens read from the prompt cache (None: ``input``)
    cache_write: float | None = None  # USD per 1M input tokens written to the prompt cache (None: ``input``)
    source: str = "override"

    def usd(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0, cache_write_tokens: int = 0) -> float:
        """The cost of ``input_tokens`` (all of them: cached and cache writes included) + ``output_tokens``."""
        fresh = max(input_tokens - cached_tokens - cache_write_tokens, 0)
        cached, written = _or(self.cached_input, self.input), _or(self.cache_write, self.input)
        return (
            fresh * self.input + cached_tokens * cached + cache_write_tokens * written + output_tokens * self.output
        ) / 1e6


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def price_of(model: str, overrides: dict[str, Any] | None = None, vendor: str = DEFAULT_VENDOR) -> Price | None:
    """The batch price of ``model`` on ``vendor`` (overrides first), or None for a model nobody lists."""
    check_vendor(vendor)
    table = check_prices(overrides or {})
    listed = _listed(model, table)
    if listed is not None and "model" in table[listed]:  # a name (e.g. an Azure deployment) for another model
        model = table[listed]["model"]
        listed = _listed(model, table)
    if listed is not None and "model" not in table[listed]:
        entry = table[listed]
        cached, written = (float(entry[k]) if k in entry else None for k in ("cached_input", "cache_write"))
        return Price(listed, float(entry["input"]), float(entry["output"]), cached, written)
    if model.startswith(_FREE):
        return Price(model, 0.0, 0.0, source="free: OpenAI does not charge for moderations")
    rates = batch_rates(vendor, model)
    return Price(**asdict(rates)) if rates else None


def _listed(model: str, table: dict[str, Any]) -> str | None:
    """The override entry for ``model``: its own, else its longest listed prefix ending at a dash."""
    names = [n for n in table if model == n or model.startswith(n + "-")]
    return max(names, key=len) if names else None


def check_prices(overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` if every entry is a valid price or model mapping, else an error naming the entry."""
    for model, entry in overrides.items():
        if not _valid(entry):
            raise InputError(
                f'price of {model!r} must be {{"input": USD, "output": USD}} per 1M tokens (>= 0; optional '
                f'"cached_input", "cache_write"), or {{"model": "<the model it is priced as>"}}, got {entry!r}'
            )
    return overrides


def _valid(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    if set(entry) == {"model"}:
        return isinstance(entry["model"], str) and bool(entry["model"])
    amounts = [entry.get(k) for k in _RATES if k in entry or k in ("input", "output")]
    return all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in amounts)


@dataclass(frozen=True)
class Estimate:
    """The expected bill of a split, before anything is submitted."""

    model: str
    requests: int
    input_tokens: int
    output_tokens: int | None  # None: not estimated (no max_tokens in the body and no expected_output_tokens)
    output_basis: str  # where output_tokens came from
    usd: float | None  # None: the model has no price
    input_usd: float | None
    output_usd: float | None
    price: dict[str, Any] | None
    vendor: str = DEFAULT_VENDOR  # whose batch prices (manifests written before vendors have none: openai)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for logs and the report."""
        tokens = f"~{self.input_tokens:,} input tokens"
        if self.output_tokens is not None:
            tokens += f" + up to {self.output_tokens:,} output tokens ({self.output_basis})"
        if self.usd is None:
            return f"{self.requests:,} requests, {tokens}; no batch price for model {self.model!r} on {self.vendor} (add it to the price overrides)"
        output = f" + ${self.output_usd:,.4f} output" if self.output_usd is not None else " (output not estimated)"
        return f"{self.requests:,} requests, {tokens}: ${self.usd:,.4f} at batch prices (${self.input_usd:,.4f} input{output})"


def estimate(
    model: str,
    endpoint: str,
    requests: int,
    input_tokens: int,
    body_options: dict[str, Any] | None = None,
    expected_output_tokens: int | None = None,
    overrides: dict[str, Any] | None = None,
    vendor: str = DEFAULT_VENDOR,
) -> Estimate:
    """The expected cost of ``requests`` requests on ``vendor``: output per request from
    ``expected_output_tokens``, else the body's token limit (an upper bound), else unknown; embeddings produce no
    output tokens, nor do moderations. No input is assumed to come from the prompt cache (an upper bound too)."""
    limit = next((body_options[k] for k in _OUTPUT_LIMITS if isinstance((body_options or {}).get(k), int)), None)
    if endpoint in (Endpoint.EMBEDDINGS, Endpoint.MODERATIONS):
        output, basis = 0, "embeddings" if endpoint == Endpoint.EMBEDDINGS else "moderations"
    elif expected_output_tokens is not None:
        output, basis = expected_output_tokens * requests, f"{expected_output_tokens:,} per request, as expected"
    elif limit is not None:
        output, basis = limit * requests, f"the body's limit of {limit:,} per request"
    else:
        output, basis = None, "not estimated: set max_tokens in the body or expected_output_tokens"
    price = price_of(model, overrides, vendor)
    input_usd = price.usd(input_tokens, 0) if price else None
    output_usd = price.usd(0, output) if price and output is not None else None
    usd = None if input_usd is None else input_usd + (output_usd or 0.0)
    return Estimate(
        model,
        requests,
        input_tokens,
        output,
        basis,
        usd,
        input_usd,
        output_usd,
        asdict(price) if price else None,
        vendor,
    )


def usd(value: float | None) -> str:
    """A USD amount as logs and messages show it; None (no price) is ``unknown``."""
    return "unknown" if value is None else f"${value:,.4f}"


def bill(
    model: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    overrides: dict[str, Any] | None = None,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    vendor: str = DEFAULT_VENDOR,
) -> float | None:
    """What ``prompt_tokens`` (all input, of which ``cached_tokens`` were read from and ``cache_write_tokens``
    written to the prompt cache) + ``completion_tokens`` of ``model`` cost at ``vendor``'s batch prices (None: no
    price)."""
    price = price_of(model, overrides, vendor) if model else None
    return price.usd(prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens) if price else None
