"""Emulator settings: limits, timing and injected faults, all fixed at start."""

import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..batch_api import MAX_BYTES, MAX_REQUESTS
from ..sizes import parse_size

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
    "gpt-3.5-turbo-instruct",  # /v1/completions
    "davinci-002",
    "babbage-002",
    "omni-moderation-latest",  # /v1/moderations
    "omni-moderation-2024-09-26",
    "text-moderation-latest",
    "text-moderation-stable",
    "gpt-image-1",  # /v1/images/generations and /v1/images/edits
    "gpt-image-1-mini",
    "gpt-image-1.5",
    "gpt-image-2",
    "sora-2",  # /v1/videos
    "sora-2-pro",
)


def names(value: str) -> tuple[str, ...]:
    """A comma-separated list of names (models, deployments) as a tuple."""
    return tuple(name.strip() for name in value.split(",") if name.strip())


def flag(
    default: Any,
    help: str,
    name: str | None = None,
    parse: Callable[[str], Any] | None = None,
    metavar: str = "N",
    shown: str | None = None,
) -> Any:
    """A setting that ``batchkit emulator`` offers as ``--name`` (default: the field's name with dashes); its
    help shows the default (``shown`` if given, nothing for None)."""
    return field(
        default=default, metadata={"help": help, "flag": name, "parse": parse, "metavar": metavar, "shown": shown}
    )


@dataclass
class EmulatorConfig:
    """Everything the emulator does differently from the real API is a setting here; the ``flag`` ones are also
    command-line options of ``batchkit emulator`` (see ``cli_flags``)."""

    data_dir: Path = field(default_factory=lambda: Path(".emulator"))
    api_key: str | None = None  # when set, every request needs "Authorization: Bearer <api_key>"
    backend: str = "echo"  # "echo" (deterministic, offline) or "forward" (an OpenAI-compatible upstream)
    upstream_url: str | None = flag(
        None,
        "OpenAI-compatible base URL for --backend forward, e.g. http://127.0.0.1:8080/v1",
        parse=str,
        metavar="URL",
    )
    upstream_api_key: str | None = None
    upstream_concurrency: int = flag(8, "parallel upstream requests")
    models: tuple[str, ...] = DEFAULT_MODELS  # "*" accepts any model
    max_requests_per_batch: int = flag(MAX_REQUESTS, "requests per batch", name="--max-requests")
    max_batch_input_bytes: int = flag(
        MAX_BYTES,
        "batch input file size limit",
        name="--max-batch-bytes",
        parse=parse_size,
        metavar="SIZE",
        shown="200MB",
    )
    max_upload_bytes: int = flag(
        512 * 1000 * 1000, "upload size limit", parse=parse_size, metavar="SIZE", shown="512MB"
    )
    completion_window_seconds: float = flag(
        24.0 * 3600, "how long the '24h' window lasts here; small values test expiry", metavar="SECONDS"
    )
    file_expiry_scale: float = flag(
        1.0,
        "how fast file lifetimes pass here: expires_after, output_expires_after and the 30-day default of batch "
        "input files last this fraction of their seconds (0.001: an hour in 3.6 s); small values test expiry",
        metavar="FACTOR",
    )
    seconds_per_request: float = flag(0.0, "slow processing: time each request takes", metavar="SECONDS")
    validation_seconds: float = flag(0.2, "time a batch stays 'validating'", metavar="SECONDS")
    tick_seconds: float = flag(0.2, "processor tick: how often batches advance", metavar="SECONDS")
    embedding_dimensions: int = flag(64, "echo embedding size unless the request sets 'dimensions'")
    # Faults
    line_failure_rate: float = flag(
        0.0, "fault: fraction of lines failing with 500/429 into the error file", metavar="RATE"
    )
    invalid_output_rate: float = flag(
        0.0,
        "fault: fraction of structured-output (json_schema) answers that are bad, still HTTP 200: each one of "
        "truncated (finish_reason 'length' / status 'incomplete'), refused (message.refusal / a refusal part) "
        "or valid JSON that breaks the schema",
        metavar="RATE",
    )
    api_error_rate: float = flag(0.0, "fault: fraction of API calls answered 429/500", metavar="RATE")
    validation_failure_rate: float = flag(
        0.0, "fault: fraction of batches failing validation (token_limit_exceeded)", metavar="RATE"
    )
    enqueued_token_limit: int | None = flag(
        None, "per-model enqueued-token limit: a batch that would pass it fails with token_limit_exceeded", parse=int
    )
    expire_rate: float = flag(0.0, "fault: fraction of batches that stop halfway and expire", metavar="RATE")
    stuck_rate: float = flag(0.0, "fault: fraction of batches that stay in_progress with no progress", metavar="RATE")
    create_delay_seconds: float = flag(
        0.0,
        "fault: answer batch creation this many seconds late (after creating it), so clients time out",
        metavar="SECONDS",
    )
    create_error_rate: float = flag(
        0.0, "fault: fraction of batch creations refused with 429 rate_limit_exceeded (nothing created)", metavar="RATE"
    )
    upload_delay_seconds: float = flag(
        0.0, "fault: answer file uploads this many seconds late (after storing the file)", metavar="SECONDS"
    )
    seed: int = flag(0, "seed for fault decisions")
    # Other vendors' limits and names (see batchkit.emulator.vendors)
    azure_max_requests: int = flag(100_000, "requests per Azure OpenAI batch (/openai/v1)")
    azure_deployments: tuple[str, ...] = flag(
        ("*",),
        "comma-separated Azure deployment names a batch's 'model' may name; '*' accepts any",
        parse=names,
        metavar="NAMES",
        shown="*",
    )
    anthropic_max_requests: int = flag(100_000, "requests per Anthropic message batch (/v1/messages/batches)")
    anthropic_max_batch_bytes: int = flag(
        256 * 1000 * 1000,
        "Anthropic message batch size limit (the create request's body)",
        parse=parse_size,
        metavar="SIZE",
        shown="256MB",
    )
    anthropic_models: tuple[str, ...] = flag(
        ("claude-*",),
        "comma-separated Anthropic models that exist, '*' wildcards allowed",
        parse=names,
        metavar="NAMES",
        shown="claude-*",
    )

    def accepts_model(self, model: str) -> bool:
        """Whether ``model`` exists: listed, or matched by a listed pattern with '*' ('*' alone accepts any)."""
        if "*" in self.models or model in self.models:
            return True
        return any("*" in m and fnmatch.fnmatchcase(model, m) for m in self.models)


def cli_flags() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(option, field name, add_argument keywords)`` of every setting offered on the command line."""
    for f in fields(EmulatorConfig):
        meta = f.metadata
        if "help" in meta:
            shown = meta["shown"] or ("" if f.default is None else "%(default)s")
            help = f"{meta['help']} (default: {shown})" if shown else meta["help"]
            option = meta["flag"] or "--" + f.name.replace("_", "-")
            settings = {"type": meta["parse"] or type(f.default), "default": f.default, "metavar": meta["metavar"]}
            yield option, f.name, {**settings, "help": help}
