"""The parameters of one split, checked when they are made (imported by the splitter and the writers it drives).

Each option is declared once here (``options.option``): its ``batchkit split`` flag, its Param in the DAG's trigger
form and its field on the split operator are all derived from that declaration."""

from dataclasses import MISSING, dataclass
from typing import Any

from ..batch_api import DEFAULT_ENDPOINT, ENDPOINTS, MAX_BYTES, MAX_REQUESTS
from ..cost.price_source import check_vendor
from ..cost.pricing import DEFAULT_VENDOR, check_prices
from ..errors import InputError
from .options import json_object_arg, json_object_or_file_arg, option, size_arg
from .requests import DETAILS, IMAGE_ENDPOINTS


@dataclass
class SplitConfig:
    """Parameters of one split; defaults follow the OpenAI Batch API limits. ``request_limit`` and ``byte_limit``
    are the batch vendor's own (the Airflow layer passes its adapter's): ``max_requests``/``max_bytes`` may not pass
    them."""

    model: str = option(
        MISSING,
        "model for every request, e.g. gpt-4o-mini",
        "string",
        form={
            "default": "gpt-4o-mini",
            "title": "Model",
            "description": "model every request names (Azure OpenAI: the Global-Batch deployment name); checked "
            "before anything is split or submitted",
            "examples": ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1", "text-embedding-3-small", "claude-haiku-4-5"],
        },
    )
    endpoint: str = option(
        DEFAULT_ENDPOINT,
        "Batch API endpoint (default: %(default)s)",
        "string",
        choices=ENDPOINTS,
        form={"title": "Endpoint", "description": "Batch API endpoint the requests go to"},
    )
    prompt_column: str | None = option(
        None,
        "column holding the prompt text",
        "string",
        group="prompt",
        form={"title": "Prompt column", "description": "column holding the prompt (if no template)"},
    )
    prompt_template: str | None = option(
        None,
        'template with {column} placeholders, e.g. "Summarise: {text}"',
        "string",
        group="prompt",
        form={
            "format": "multiline",
            "title": "Prompt template",
            "description": "the user prompt, with {column} placeholders filled from each row; leave empty to use "
            "prompt_column",
        },
    )
    system_prompt: str | None = option(
        None,
        "system message (chat) or instructions (responses)",
        "string",
        form={
            "format": "multiline",
            "title": "System prompt",
            "description": "sent as the system message of every request (empty: none)",
        },
    )
    id_column: str | None = option(
        None,
        "unique id column used as custom_id (default: <source index>-<row>)",
        "string",
        form={"title": "Id column", "description": "unique id column (empty: row position)"},
    )
    max_requests: int = option(
        MAX_REQUESTS,
        "requests per file (default: %(default)s)",
        "integer",
        param="max_requests_per_file",
        form={  # the DAG's largest value: params.VENDOR_MAX_REQUESTS
            "default": None,
            "minimum": 1,
            "title": "Requests per batch file",
            "description": "at most this many requests per batch file, i.e. per batch; empty: the vendor's limit "
            "(OpenAI 50,000; Azure OpenAI and Anthropic 100,000)",
        },
    )
    max_bytes: int = option(MAX_BYTES, "bytes per file, e.g. 200MB (default)", "integer", parse=size_arg)
    max_tokens: int | None = option(
        None,
        "estimated input tokens per file (the model's enqueued-token limit)",
        "integer",
        param="max_tokens_per_file",
        form={
            "minimum": 1,
            "title": "Tokens per batch file",
            "description": "at most this many estimated input tokens per batch file, e.g. to stay under the "
            "account's enqueued-token limit (empty: no limit)",
        },
    )
    exact_tokens: bool = option(False, "count tokens with the model's tokenizer (offline, slower)", "boolean")
    body_options: dict[str, Any] = option(
        None,
        "extra body fields, e.g. '{\"temperature\": 0}'",
        "object",
        flag="--body-json",
        parse=json_object_arg,
        factory=dict,
        form={
            "title": "Request body options",
            "description": "extra request body fields, e.g. temperature, max_completion_tokens",
            "examples": [{"temperature": 0}, {"temperature": 0, "max_completion_tokens": 50}],
        },
    )
    keep_columns: list[str] | None = option(  # None: all
        None,
        "input columns kept beside the results",
        "array",
        flag="",
        param="input_columns",
        operator="input_columns",
        form={
            "default": [],
            "items": {"type": "string"},
            "title": "Input columns to keep",
            "description": "input columns to keep in the table (empty: all)",
        },
    )
    max_files: int | None = option(  # the operator sets Airflow's [core] max_map_length
        None, "refuse before writing more batch files than this", "integer", flag="", operator=None
    )
    output_schema: dict[str, Any] | None = option(  # typed columns (batchkit.structured)
        None,
        "JSON Schema every answer must follow (structured outputs; its properties become typed columns): "
        "the JSON itself or @path/to/schema.json",
        "object",
        parse=json_object_or_file_arg,
        form={
            "title": "Output schema",
            "description": "structured outputs: a JSON Schema object every answer must follow (strict: every object "
            "lists all its properties in required and sets additionalProperties false); its properties become "
            "typed columns (README 'Structured outputs'); empty: free text in response_text",
        },
    )
    expected_output_tokens: int | None = option(
        None,
        "output tokens per request for the cost estimate (default: the body's max_tokens, else not estimated)",
        "integer",
        form={
            "minimum": 0,
            "title": "Expected output tokens",
            "description": "output tokens per request for the cost estimate; empty: the body's max_tokens (or "
            "max_completion_tokens / max_output_tokens), if any",
            "examples": [20, 200],
        },
    )
    prices: dict[str, Any] | None = option(  # the DAG's come from its settings (the openai_batch_prices Variable)
        None,
        'batch prices per 1M tokens overriding genai-prices: {"model": {"input": 0.1, "output": 0.4}} or @prices.json',
        "object",
        parse=json_object_or_file_arg,
    )
    image_columns: list[str] | None = option(  # batchkit.split.images
        None,
        "column of images sent beside the prompt (repeat for more): http(s) or data: URLs, or image bytes",
        "array",
        flag="--image-column",
        form={
            "default": [],
            "items": {"type": "string"},
            "title": "Image columns",
            "description": "columns of images sent beside the prompt (chat completions, responses, moderations): "
            "http(s) or data: URLs, or image bytes (sent as data URLs); a row whose image is null or not an image "
            "is skipped. Images cost input tokens (README 'Image inputs')",
            "examples": [["image_url"], ["photo", "label_photo"]],
        },
    )
    image_detail: str = option(
        "auto",
        "detail of each image on chat completions and responses (default: %(default)s)",
        "string",
        choices=DETAILS,
        form={
            "title": "Image detail",
            "description": "how closely the model looks at each image: low costs a fixed few tokens per image, high "
            "counts its tiles; auto lets the model choose (estimated as high)",
        },
    )
    # Set by the Airflow layer from the connection's vendor (the command line splits for OpenAI)
    request_limit: int = option(MAX_REQUESTS, "the vendor's requests per batch", "integer", flag="", operator=None)
    byte_limit: int = option(MAX_BYTES, "the vendor's bytes per batch", "integer", flag="", operator=None)
    vendor: str = option(
        DEFAULT_VENDOR,
        "whose batch prices the estimate takes (openai, anthropic, azure)",
        "string",
        flag="",
        operator=None,
    )

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
        columns = self.image_columns or []
        if len(set(columns)) < len(columns):
            raise InputError(f"image columns are named more than once: {', '.join(columns)}")
        if columns and self.endpoint not in IMAGE_ENDPOINTS:
            allowed = ", ".join(sorted(IMAGE_ENDPOINTS))
            raise InputError(f"{self.endpoint} takes no images: image columns work on {allowed}")
        if self.image_detail not in DETAILS:
            raise InputError(f"image detail must be one of {', '.join(DETAILS)}, got {self.image_detail!r}")
