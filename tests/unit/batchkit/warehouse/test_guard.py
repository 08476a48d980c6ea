"""The load's guard: unanswered requests, errors and invalid outputs each refuse the load on their own terms."""

import pytest

from batchkit.errors import ResultsIncomplete, ResultsRejected, TerminalError, TransientError
from batchkit.warehouse.guard import check_results

COUNTS = {"rows": 100, "ok": 88, "errors": 12, "invalid": 10, "unanswered": 0}  # 2 errors, 10 invalid outputs


def guard(counts: dict = COUNTS, max_error_rate: float = 1.0, max_invalid_output_rate: float = 1.0) -> None:
    check_results(counts, "/s/run/merged/result.parquet", "2026-11-24", "t", max_error_rate, max_invalid_output_rate)


def test_invalid_outputs_count_against_their_own_rate_not_the_error_rate():
    guard(max_error_rate=0.02, max_invalid_output_rate=0.10)  # 2% errors and 10% invalid: both at their limit
    with pytest.raises(ResultsRejected) as refused:
        guard(max_error_rate=0.5, max_invalid_output_rate=0.05)
    message = str(refused.value)
    assert "10 of 100 rows (10.0%) got an answer that does not follow the output schema" in message
    assert "over max_invalid_output_rate 5.0%" in message and "the table was left unchanged" in message
    assert "batchkit load /s/run/merged/result.parquet --table t --partition 2026-11-24" in message
    with pytest.raises(ResultsRejected, match=r"2 of 100 rows \(2.0%\) ended in error, over max_error_rate 1.0%"):
        guard(max_error_rate=0.01, max_invalid_output_rate=1.0)


def test_unanswered_requests_refuse_the_load_whatever_the_rates():
    assert issubclass(ResultsRejected, TerminalError) and issubclass(ResultsIncomplete, TransientError)
    with pytest.raises(ResultsIncomplete, match="3 request\\(s\\) of partition 2026-11-24 have no answer"):
        guard({**COUNTS, "unanswered": 3}, max_error_rate=1.0, max_invalid_output_rate=1.0)
