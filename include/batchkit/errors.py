"""Errors raised by batchkit with messages meant for the person running the job.

Each error says what it is, so callers decide once: a ``TerminalError`` will fail the same way on every retry
(bad input, schema conflict, configuration, a guard that refused the results), a ``TransientError`` may pass
later (incomplete results, another run holding a claim, throttling). Every raise uses a subclass of one of the
two; a plain ``BatchkitError`` is undecided, and the Airflow layer treats it as terminal.
"""


class BatchkitError(Exception):
    """A user-facing error: the message says what is wrong and where (file, column, row)."""


class TerminalError(BatchkitError):
    """Retrying cannot help: the input, the parameters or the state must change first."""


class TransientError(BatchkitError):
    """Retrying later may help."""


class InputError(TerminalError):
    """The input data or the parameters cannot be turned into valid batch requests."""


class LedgerError(TerminalError):
    """The request ledger is unreadable or inconsistent; nothing is re-sent until it is repaired."""


class ResultsUnreadable(TerminalError):
    """A batch's output or error file holds a line that is not a valid result for the batch's requests."""


class SetupError(TerminalError):
    """The installation or the deployment's configuration is broken (a packaged file, a pipeline id)."""


class ScratchTooSmall(TerminalError):
    """The local disk cannot hold what the work must spill; nothing was changed."""


class ResultsRejected(TerminalError):
    """The run's results failed a guard (error or invalid-output rate); the table was left as it was."""


class ResultsIncomplete(TransientError):
    """Results are not all there yet: the ledger lacks answers, or a batch's files hold fewer or more results than
    the batch reports; nothing was changed."""


class ClaimHeld(TransientError):
    """Another run holds the ledger's claim on a batch key and is creating that batch; a later try adopts it."""


class WarehouseUnavailable(TransientError):
    """The warehouse could not be reached, opened or locked in time; nothing was changed."""
