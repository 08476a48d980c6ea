"""The result statuses, and which of a request's answers counts: one rule for the attempt loop, the merge and the
report.

A request's answers rank ``ok`` first, then a final error (sending the same body again would repeat it), then
an unfinished one (expired, throttled, 5xx, cancelled); within a rank the latest recorded wins, then the highest
attempt.
"""

from enum import StrEnum


class ResultStatus(StrEnum):
    """The ``status`` of a result row."""

    OK = "ok"
    ERROR = "error"
    INVALID_OUTPUT = "invalid_output"  # a 200 answer that does not follow the output schema


BEST_FIRST_SQL = (
    f"CASE WHEN status = '{ResultStatus.OK}' THEN 0 WHEN final THEN 1 ELSE 2 END, recorded_at DESC NULLS LAST, "
    "attempts DESC"
)  # ORDER BY over ledger rows (status, final, recorded_at, attempts): the best answer first
BEST_ANSWER_COLUMNS = ["status", "final", "recorded_at", "attempts"]


def best_first(status: str, final: bool, recorded_at: float | None, attempts: int) -> tuple[int, float, int]:
    """A sort key over the same columns that orders answers as ``BEST_FIRST_SQL`` does (smallest is best)."""
    rank = 0 if status == ResultStatus.OK else 1 if final else 2
    return rank, -(recorded_at if recorded_at is not None else float("-inf")), -attempts
