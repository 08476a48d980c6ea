"""What a vendor adapter raises beyond the core's errors (re-exported by ``vendors.base``)."""

from batchkit.errors import TransientError


class CreateRefused(Exception):
    """The vendor refused to create a batch for its rate or queue limits (OpenAI/Azure/Anthropic 429): wait on the
    triggerer, then try again (``queue_wait.wait_then_retry``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Gone(Exception):
    """The vendor no longer has the batch or file (404): deleted, or expired."""


class LookupPending(TransientError):
    """A lost create's lookup cannot tell yet which batch is its own (a vendor without metadata: another claim is
    still creating a batch that could be it, or several running batches could). Never a reason to create again:
    look again later, or retry the task."""


class ModelMissing(Exception):
    """The model (Azure: the deployment) does not exist for this connection."""


class LookupAmbiguous(LookupPending):
    """The running batches that could be a lost create's cannot be told apart yet (several of them, or another claim
    is still creating one); once they end, their results tell."""
