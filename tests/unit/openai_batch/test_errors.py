"""One mapping from batchkit's errors to Airflow's verdict: terminal errors fail at once, transient ones retry."""

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from batchkit.errors import InputError, LedgerError, ResultsRejected, TerminalError, TransientError
from openai_batch.errors import airflow_errors


@pytest.mark.parametrize("error", [InputError, LedgerError, ResultsRejected, TerminalError])
def test_terminal_errors_fail_the_task_without_retries(error):
    with pytest.raises(AirflowFailException, match=r"^splitting dt=1: row 3 is bad$"), airflow_errors("splitting dt=1"):
        raise error("row 3 is bad")


def test_transient_errors_leave_the_retry_to_airflow():
    with (
        pytest.raises(AirflowException, match=r"^collecting: 2 results missing$") as caught,
        airflow_errors("collecting"),
    ):
        raise TransientError("2 results missing")
    assert not isinstance(caught.value, AirflowFailException)


def test_other_errors_pass_through_unchanged():
    with pytest.raises(KeyError, match="x"), airflow_errors("loading"):
        raise KeyError("x")
