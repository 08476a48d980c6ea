"""The OpenAI Batch API vocabulary shared by the core, the Airflow layer, the emulator and the tests: endpoints,
statuses and their sets, limits, error codes, metadata."""

from enum import StrEnum


class Endpoint(StrEnum):
    """Every endpoint the Batch API lets a batch (and each of its lines) target; the emulator answers them all."""

    CHAT = "/v1/chat/completions"
    RESPONSES = "/v1/responses"
    EMBEDDINGS = "/v1/embeddings"
    COMPLETIONS = "/v1/completions"
    MODERATIONS = "/v1/moderations"
    IMAGES_GENERATIONS = "/v1/images/generations"
    IMAGES_EDITS = "/v1/images/edits"
    VIDEOS = "/v1/videos"


# What the split builds requests for (plain strings, for Params and CLI choices); the first is the default. A
# subset of Endpoint: only endpoints whose requests the split builds and whose answers collect and merge parse.
ENDPOINTS = tuple(e.value for e in (Endpoint.CHAT, Endpoint.RESPONSES, Endpoint.EMBEDDINGS, Endpoint.MODERATIONS))
DEFAULT_ENDPOINT = ENDPOINTS[0]
TEXT_ENDPOINTS = frozenset({Endpoint.CHAT, Endpoint.RESPONSES})  # answers are text: output schemas apply


class BatchStatus(StrEnum):
    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


TERMINAL = frozenset({BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED})
CANCELLABLE = frozenset({BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING})
LIVE = CANCELLABLE | {BatchStatus.CANCELLING}  # created and not yet terminal: what an in-flight bound counts

MAX_REQUESTS = 50_000  # requests per batch (per input file)
MAX_BYTES = 200 * 1000 * 1000  # bytes per batch input file

METADATA_KEY = "batchkit_key"  # the batch key in a batch's metadata (changing it orphans live batches)
QUEUE_FULL = "token_limit_exceeded"  # a batch refused for the enqueued-token limit: wait, then resubmit it whole

OUTPUT_TRUNCATED = "output_truncated"  # a structured answer cut off at its token limit (see batchkit.structured)

# Result lines a later attempt may answer: throttling, server errors, lines the batch never reached.
RETRYABLE_HTTP_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset({"batch_expired", "rate_limit_exceeded", "server_error", QUEUE_FULL, OUTPUT_TRUNCATED})
# Lines that never got an answer: not final, so a clear or a rerun may send them again (never within the run
# for a cancelled batch: someone stopped it on purpose).
UNANSWERED_CODES = RETRYABLE_CODES | {"batch_cancelled"}
