"""What a batch costs: Batch API prices per model, an estimate before submitting and the bill after.

Prices are USD per 1M tokens at the **Batch API** rate (half the synchronous price), as OpenAI published them.
They change: a deployment overrides or extends the table with ``{"model": {"input": x, "output": y}}`` (the
``openai_batch_prices`` Airflow Variable, ``batchkit split --prices``). A dated snapshot such as
``gpt-4o-mini-2024-07-18`` takes the price of its longest listed prefix.
"""

from dataclasses import asdict, dataclass
from typing import Any

from ..batch_api import Endpoint
from ..errors import InputError

BATCH_PRICES: dict[str, dict[str, float]] = {  # USD per 1M tokens, Batch API (50% of the synchronous price)
    "gpt-5": {"input": 0.625, "output": 5.00},
    "gpt-5-mini": {"input": 0.125, "output": 1.00},
    "gpt-5-nano": {"input": 0.025, "output": 0.20},
    "gpt-4.1": {"input": 1.00, "output": 4.00},
    "gpt-4.1-mini": {"input": 0.20, "output": 0.80},
    "gpt-4.1-nano": {"input": 0.05, "output": 0.20},
    "gpt-4o": {"input": 1.25, "output": 5.00},
    "gpt-4o-mini": {"input": 0.075, "output": 0.30},
    "o3": {"input": 1.00, "output": 4.00},
    "o3-mini": {"input": 0.55, "output": 2.20},
    "o4-mini": {"input": 0.55, "output": 2.20},
    "gpt-3.5-turbo": {"input": 0.25, "output": 0.75},
    "text-embedding-3-small": {"input": 0.01, "output": 0.0},
    "text-embedding-3-large": {"input": 0.065, "output": 0.0},
    "text-embedding-ada-002": {"input": 0.05, "output": 0.0},
}
_OUTPUT_LIMITS = ("max_completion_tokens", "max_tokens", "max_output_tokens")  # chat (new, old), responses


@dataclass(frozen=True)
class Price:
    model: str  # the table entry that priced it
    input: float  # USD per 1M input tokens
    output: float  # USD per 1M output tokens

    def usd(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1e6


def price_of(model: str, overrides: dict[str, Any] | None = None) -> Price | None:
    """The batch price of ``model`` (overrides first), or None for a model nobody listed."""
    table = {**BATCH_PRICES, **check_prices(overrides or {})}
    for name in sorted((n for n in table if model == n or model.startswith(n + "-")), key=len, reverse=True):
        return Price(name, float(table[name]["input"]), float(table[name]["output"]))
    return None


def check_prices(overrides: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``overrides`` if every entry is a valid price, else an error naming the entry."""
    for model, entry in overrides.items():
        ok = isinstance(entry, dict) and all(
            isinstance(entry.get(k), int | float) and not isinstance(entry.get(k), bool) and entry[k] >= 0
            for k in ("input", "output")
        )
        if not ok:
            raise InputError(
                f'price of {model!r} must be {{"input": USD, "output": USD}} per 1M tokens (>= 0), got {entry!r}'
            )
    return overrides


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for logs and the report."""
        tokens = f"~{self.input_tokens:,} input tokens"
        if self.output_tokens is not None:
            tokens += f" + up to {self.output_tokens:,} output tokens ({self.output_basis})"
        if self.usd is None:
            return f"{self.requests:,} requests, {tokens}; no batch price for model {self.model!r} (add it to prices)"
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
) -> Estimate:
    """The expected cost of ``requests`` requests: output per request from ``expected_output_tokens``, else the
    body's token limit (an upper bound), else unknown; embeddings produce no output tokens."""
    limit = next((body_options[k] for k in _OUTPUT_LIMITS if isinstance((body_options or {}).get(k), int)), None)
    if endpoint == Endpoint.EMBEDDINGS:
        output, basis = 0, "embeddings"
    elif expected_output_tokens is not None:
        output, basis = expected_output_tokens * requests, f"{expected_output_tokens:,} per request, as expected"
    elif limit is not None:
        output, basis = limit * requests, f"the body's limit of {limit:,} per request"
    else:
        output, basis = None, "not estimated: set max_tokens in the body or expected_output_tokens"
    price = price_of(model, overrides)
    input_usd = price.usd(input_tokens, 0) if price else None
    output_usd = price.usd(0, output) if price and output is not None else None
    usd = None if input_usd is None else input_usd + (output_usd or 0.0)
    return Estimate(
        model, requests, input_tokens, output, basis, usd, input_usd, output_usd, asdict(price) if price else None
    )


def usd(value: float | None) -> str:
    """A USD amount as logs and messages show it; None (no price) is ``unknown``."""
    return "unknown" if value is None else f"${value:,.4f}"


def bill(
    model: str | None, prompt_tokens: int, completion_tokens: int, overrides: dict[str, Any] | None = None
) -> float | None:
    """What ``prompt_tokens`` + ``completion_tokens`` of ``model`` cost at batch prices (None: no price)."""
    price = price_of(model, overrides) if model else None
    return price.usd(prompt_tokens, completion_tokens) if price else None
