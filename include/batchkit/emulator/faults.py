"""Every injected fault decided in one place. Per-batch and per-line faults are deterministic (a hash of the seed
and the ids), so they survive restarts; per-request faults (API errors, refused creations) draw from the seed."""

import hashlib
import random

from . import structured
from .config import EmulatorConfig
from .errors import APIError, overloaded, rate_limited, server_failed


def fraction(seed: int, *parts: str) -> float:
    """A deterministic number in [0, 1) for fault decisions that must survive restarts."""
    digest = hashlib.sha256("\x00".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Faults:
    """The faults ``config`` asks for."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config, self._draws = config, random.Random(config.seed)

    def api_error(self) -> APIError | None:
        """An injected 429 or 500 for an API call (``api_error_rate``), half of each."""
        if self.config.api_error_rate and self._draws.random() < self.config.api_error_rate:
            return rate_limited(calls=True) if self._draws.random() < 0.5 else server_failed()
        return None

    def create_refused(self) -> APIError | None:
        """A batch creation refused before anything is created (``create_error_rate``)."""
        if self.config.create_error_rate and self._draws.random() < self.config.create_error_rate:
            return APIError(
                429,
                "Too many batch creation requests; please slow down (injected fault).",
                code="rate_limit_exceeded",
                type_="requests",
            )
        return None

    def fails_validation(self, batch_id: str) -> bool:
        return fraction(self.config.seed, batch_id, "validation") < self.config.validation_failure_rate

    def batch_fault(self, batch_id: str) -> str | None:
        """``stuck`` (no progress until cancelled or expired), ``expire`` (stops halfway), or None."""
        if fraction(self.config.seed, batch_id, "stuck") < self.config.stuck_rate:
            return "stuck"
        if fraction(self.config.seed, batch_id, "expire") < self.config.expire_rate:
            return "expire"
        return None

    def line_failure(self, batch_id: str, custom_id: str, vendor: str = "openai") -> APIError | None:
        """A line answered 429 or 500 into the error file (``line_failure_rate``), half of each; on Anthropic an
        ``errored`` result, half ``overloaded_error`` (529) and half ``api_error`` (500)."""
        roll = fraction(self.config.seed, batch_id, custom_id, "line")
        if roll < self.config.line_failure_rate:
            first = roll < self.config.line_failure_rate / 2
            if vendor == "anthropic":
                return overloaded() if first else APIError(500, server_failed().message, type_="api_error")
            return rate_limited() if first else server_failed()
        return None

    def invalid_output(self, batch_id: str, custom_id: str) -> str | None:
        """Which bad answer a structured-output line gets (``structured.INVALID_KINDS``): a fresh draw per batch."""
        rate = self.config.invalid_output_rate
        roll = fraction(self.config.seed, batch_id, custom_id, "invalid_output")
        if roll >= rate:
            return None
        kinds = structured.INVALID_KINDS
        return kinds[min(len(kinds) - 1, int(roll / rate * len(kinds)))]
