"""Core errors -> Airflow's verdict, decided in one place: a ``TransientError`` lets Airflow retry the task; a
``TerminalError`` fails it without retries, and so does a ``BatchkitError`` that is neither (undecided: failing
costs a clear, retrying blindly could pay twice). Other exceptions pass through and Airflow retries them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from batchkit.errors import BatchkitError, TransientError


@contextmanager
def airflow_errors(what: str) -> Iterator[None]:
    """Re-raise ``batchkit`` errors as ``AirflowException`` (transient: retried) or ``AirflowFailException``
    (terminal or undecided: failed at once), prefixed with ``what`` was being done."""
    try:
        yield
    except TransientError as exc:
        raise AirflowException(f"{what}: {exc}") from None
    except BatchkitError as exc:
        raise AirflowFailException(f"{what}: {exc}") from None
