"""Emulator settings: limits, timing and injected faults, all fixed at start."""

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "o3",
    "o4-mini",
    "gpt-3.5-turbo",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
)


@dataclass
class EmulatorConfig:
    """Everything the emulator does differently from the real API is a setting here."""

    data_dir: Path = field(default_factory=lambda: Path(".emulator"))
    api_key: str | None = None  # when set, every request needs "Authorization: Bearer <api_key>"
    backend: str = "echo"  # "echo" (deterministic, offline) or "forward" (an OpenAI-compatible upstream)
    upstream_url: str | None = None
    upstream_api_key: str | None = None
    upstream_concurrency: int = 8
    models: tuple[str, ...] = DEFAULT_MODELS  # "*" accepts any model
    max_requests_per_batch: int = 50_000
    max_batch_input_bytes: int = 200 * 1000 * 1000
    max_upload_bytes: int = 512 * 1000 * 1000
    completion_window_seconds: float = 24 * 3600  # how long "24h" lasts on this emulator
    seconds_per_request: float = 0.0  # slow processing: time each request takes
    validation_seconds: float = 0.2  # time a batch spends in "validating"
    tick_seconds: float = 0.2  # how often the processor advances batches
    embedding_dimensions: int = 64  # echo embeddings size unless the request sets "dimensions"
    # Faults
    line_failure_rate: float = 0.0  # fraction of lines answered with 500/429 into the error file
    invalid_output_rate: float = 0.0  # fraction of structured answers truncated, refused or not matching the schema
    api_error_rate: float = 0.0  # fraction of API calls answered 429/500
    validation_failure_rate: float = 0.0  # fraction of batches that fail validation
    enqueued_token_limit: int | None = None  # per model: a batch that would pass it fails (token_limit_exceeded)
    expire_rate: float = 0.0  # fraction of batches that never progress and expire
    stuck_rate: float = 0.0  # fraction of batches that stay in_progress until cancelled or expired
    create_delay_seconds: float = 0.0  # answer POST /v1/batches this late (after creating): client timeouts
    create_error_rate: float = 0.0  # fraction of POST /v1/batches refused with 429 before creating anything
    upload_delay_seconds: float = 0.0  # answer POST /v1/files this late (after storing the file)
    seed: int = 0

    def accepts_model(self, model: str) -> bool:
        return "*" in self.models or model in self.models
