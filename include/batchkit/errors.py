"""Errors raised by batchkit with messages meant for the person running the job."""


class BatchkitError(Exception):
    """A user-facing error: the message says what is wrong and where (file, column, row)."""


class InputError(BatchkitError):
    """The input data or the parameters cannot be turned into valid batch requests."""
