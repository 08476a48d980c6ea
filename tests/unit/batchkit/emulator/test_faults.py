"""Injected faults: deterministic per batch and line (they survive restarts), at the configured rates."""

from batchkit.emulator.config import EmulatorConfig
from batchkit.emulator.faults import Faults
from batchkit.emulator.structured import INVALID_KINDS


def test_invalid_output_draws_are_per_batch_and_cover_every_kind():
    def draws(rate: float, batch_id: str) -> list[str | None]:
        faults = Faults(EmulatorConfig(invalid_output_rate=rate))
        return [faults.invalid_output(batch_id, f"r{i}") for i in range(300)]

    assert set(draws(0.0, "batch_a")) == {None}
    assert set(draws(1.0, "batch_a")) == set(INVALID_KINDS)
    assert draws(0.3, "batch_a") != draws(0.3, "batch_b")  # a resubmitted line gets a fresh draw
    assert 45 < sum(kind is not None for kind in draws(0.3, "batch_a")) < 135


def test_line_failures_are_429_or_500_at_the_rate_and_the_same_after_a_restart():
    def failures(seed: int) -> list[int | None]:
        faults = Faults(EmulatorConfig(line_failure_rate=0.4, seed=seed))
        return [getattr(faults.line_failure("batch_a", f"r{i}"), "status", None) for i in range(500)]

    first = failures(1)
    assert first == failures(1) and first != failures(2)
    assert set(first) == {None, 429, 500}
    assert 150 < sum(status is not None for status in first) < 250


def test_batch_faults_and_refusals_follow_their_rates():
    stuck = Faults(EmulatorConfig(stuck_rate=1.0, expire_rate=1.0))
    assert stuck.batch_fault("batch_a") == "stuck"  # stuck wins over expire
    assert Faults(EmulatorConfig(expire_rate=1.0)).batch_fault("batch_a") == "expire"
    assert Faults(EmulatorConfig()).batch_fault("batch_a") is None
    assert Faults(EmulatorConfig(validation_failure_rate=1.0)).fails_validation("batch_a")
    refusing = Faults(EmulatorConfig(create_error_rate=1.0, api_error_rate=1.0))
    assert refusing.create_refused().status == 429
    assert {refusing.api_error().status for _ in range(50)} == {429, 500}
    calm = Faults(EmulatorConfig())
    assert calm.create_refused() is None and calm.api_error() is None
