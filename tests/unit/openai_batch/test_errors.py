"""One mapping from batchkit's errors to Airflow's verdict: terminal errors fail at once, transient ones retry.

Every error class in ``batchkit.errors`` needs a decision below: a new class without one fails this test."""

import inspect

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from batchkit import errors
from openai_batch.errors import airflow_errors

FAILS, RETRIES = "fails", "retries"
VERDICTS = {
    "BatchkitError": FAILS,  # undecided: treated as terminal, never retried by accident
    "TerminalError": FAILS,
    "InputError": FAILS,
    "LedgerError": FAILS,
    "ResultsUnreadable": FAILS,
    "SetupError": FAILS,
    "ScratchTooSmall": FAILS,
    "ResultsRejected": FAILS,
    "TransientError": RETRIES,
    "ResultsIncomplete": RETRIES,
    "ClaimHeld": RETRIES,
    "WarehouseUnavailable": RETRIES,
}
CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.BatchkitError) and cls.__module__ == errors.__name__
]


@pytest.mark.parametrize("error", CLASSES, ids=lambda cls: cls.__name__)
def test_every_core_error_has_a_verdict_and_the_mapping_follows_it(error):
    assert error.__name__ in VERDICTS, f"decide whether {error.__name__} fails the task or retries it"
    with (
        pytest.raises(AirflowException, match=r"^splitting dt=1: row 3 is bad$") as caught,
        airflow_errors("splitting dt=1"),
    ):
        raise error("row 3 is bad")
    verdict = FAILS if isinstance(caught.value, AirflowFailException) else RETRIES
    assert verdict == VERDICTS[error.__name__]
    assert (verdict == RETRIES) == issubclass(error, errors.TransientError)  # the class says what it is


def test_every_verdict_names_an_error_class():
    assert set(VERDICTS) == {cls.__name__ for cls in CLASSES}


def test_other_errors_pass_through_unchanged():
    with pytest.raises(KeyError, match="x"), airflow_errors("loading"):
        raise KeyError("x")
