"""Core errors -> Airflow's verdict, decided in one place: terminal errors fail the task without retries,
transient ones let Airflow retry it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from batchkit.errors import BatchkitError, TerminalError


@contextmanager
def airflow_errors(what: str) -> Iterator[None]:
    """Re-raise ``batchkit`` errors as ``AirflowFailException`` (terminal) or ``AirflowException`` (transient),
    prefixed with ``what`` was being done."""
    try:
        yield
    except TerminalError as exc:
        raise AirflowFailException(f"{what}: {exc}") from None
    except BatchkitError as exc:
        raise AirflowException(f"{what}: {exc}") from None
