"""The parameters of one split, checked when they are made (imported by the splitter and the writers it drives)."""

from dataclasses import dataclass, field
from typing import Any

from ..batch_api import DEFAULT_ENDPOINT, MAX_BYTES, MAX_REQUESTS
from ..cost.price_source import check_vendor
from ..cost.pricing import DEFAULT_VENDOR, check_prices
from ..errors import InputError


@dataclass
class SplitConfig:
    """Parameters of one split; defaults follow the OpenAI Batch API limits. ``request_limit`` and ``byte_limit``
    are the batch vendor's own (the Airflow layer passes its adapter's): ``max_requests``/``max_bytes`` may not pass
    them."""

    model: str
    endpoint: str = DEFAULT_ENDPOINT
    prompt_column: str | None = None
    prompt_template: str | None = None
    system_prompt: str | None = None
    id_column: str | None = None
    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_BYTES
    max_tokens: int | None = None
    body_options: dict[str, Any] = field(default_factory=dict)
    exact_tokens: bool = False
    keep_columns: list[str] | None = None  # input columns kept beside the results (None: all)
    max_files: int | None = None  # e.g. Airflow's [core] max_map_length: refuse before writing more files
    output_schema: dict[str, Any] | None = None  # JSON Schema of every answer: typed columns (batchkit.structured)
    expected_output_tokens: int | None = None  # per request, for the cost estimate (else the body's max_tokens)
    prices: dict[str, Any] | None = None  # batch price overrides (batchkit.cost.pricing)
    request_limit: int = MAX_REQUESTS  # the vendor's requests per batch
    byte_limit: int = MAX_BYTES  # the vendor's bytes per batch
    vendor: str = DEFAULT_VENDOR  # whose batch prices the estimate takes (openai, anthropic, azure)
    image_columns: list[str] | None = None  # images sent beside the prompt: URLs or image bytes (batchkit.split.images)
    image_detail: str = "auto"  # each image's detail on chat completions and responses: auto, low, high

    def __post_init__(self) -> None:
        if (self.prompt_column is None) == (self.prompt_template is None):
            raise InputError("give exactly one of --prompt-column or --prompt-template")
        if not 1 <= self.max_requests <= self.request_limit:
            raise InputError(f"--max-requests must be between 1 and {self.request_limit}, got {self.max_requests}")
        if not 1 <= self.max_bytes <= self.byte_limit:
            limit = f"{self.byte_limit / 1e6:g}MB"
            raise InputError(f"--max-bytes must be between 1 byte and {limit}, got {self.max_bytes}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InputError(f"--max-tokens must be positive, got {self.max_tokens}")
        check_vendor(self.vendor)
        self._check_images()
        if self.prices:
            check_prices(self.prices)
        if self.expected_output_tokens is not None and self.expected_output_tokens < 0:
            raise InputError(f"expected output tokens must be >= 0, got {self.expected_output_tokens}")
        if self.output_schema is not None:
            from ..structured import request_fields

            request_fields(self.endpoint, self.output_schema)  # a usable schema on a text endpoint

    def _check_images(self) -> None:
        from .requests import DETAILS, IMAGE_ENDPOINTS

        columns = self.image_columns or []
        if len(set(columns)) < len(columns):
            raise InputError(f"image columns are named more than once: {', '.join(columns)}")
        if columns and self.endpoint not in IMAGE_ENDPOINTS:
            allowed = ", ".join(sorted(IMAGE_ENDPOINTS))
            raise InputError(f"{self.endpoint} takes no images: image columns work on {allowed}")
        if self.image_detail not in DETAILS:
            raise InputError(f"image detail must be one of {', '.join(DETAILS)}, got {self.image_detail!r}")
