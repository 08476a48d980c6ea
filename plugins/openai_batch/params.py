"""The Params of the ``openai_batch_inference`` DAG: its trigger form, in sections, each with a title, a
description and examples."""

from typing import Any

from airflow.sdk import Param

from batchkit.batch_api import DEFAULT_ENDPOINT, ENDPOINTS
from batchkit.sentiment import SENTIMENT_SCHEMA
from openai_batch.context import PARTITION_PATTERN

VENDOR_MAX_REQUESTS = 100_000  # the largest batch of any built-in vendor (the split checks the connection's own)


def optional(kind: str, **schema: Any) -> Param:
    """A Param that may stay empty (null by default): the trigger form treats a Param whose type excludes null
    as required, so the form could not be submitted with the defaults."""
    return Param(None, type=["null", kind], **schema)


def inference_params(
    data_root: str, partition_format: str, default_table: str, conn_id: str = "openai_default"
) -> dict[str, Param]:
    """The DAG's Params; ``data_root`` is where the sample source lives, ``partition_format`` the default strftime
    format of partition keys, ``default_table`` the default target table, ``conn_id`` the default batch vendor
    connection."""
    return {
        "source": Param(
            f"{data_root}/reviews/dt={{partition}}",
            type="string",
            title="Source",
            description="Parquet file, directory or glob, local or s3://; {partition} is replaced by the partition "
            "key, {partition:%H} (any strftime format) by its time, e.g. dt={partition:%Y-%m-%d}/hr={partition:%H}",
            section="Input",
            examples=["s3://my-lake/reviews/dt={partition}/", f"{data_root}/reviews/dt={{partition}}/*.parquet"],
        ),
        "partition": optional(
            "string",
            pattern=f"^$|^{PARTITION_PATTERN.pattern}$",
            title="Partition",
            description="partition key, e.g. 2026-11-24; empty: the period the run covers (a scheduled run at "
            "midnight: the day that just closed; a backfill: each date)",
            section="Input",
            examples=["2026-11-24", "2026-11-24T13"],
        ),
        "partition_format": Param(
            partition_format,
            type="string",
            title="Partition format",
            description="strftime format of the partition key taken from the run's data interval "
            "(%Y-%m-%d daily, %Y-%m-%dT%H hourly)",
            section="Input",
            examples=["%Y-%m-%d", "%Y-%m-%dT%H"],
        ),
        "id_column": Param(
            "review_id",
            type="string",
            title="Id column",
            description="unique id column (empty: row position)",
            section="Input",
        ),
        "input_columns": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Input columns to keep",
            description="input columns to keep in the table (empty: all)",
            section="Input",
        ),
        "conn_id": Param(
            conn_id,
            type="string",
            minLength=1,
            title="Batch API connection",
            description="the connection whose vendor runs the batches: openai (OpenAI or any compatible API), an "
            "openai connection on an Azure OpenAI resource, or anthropic (README 'Vendors'); one of "
            "OPENAI_BATCH_ALLOWED_API_CONNS",
            section="Requests",
        ),
        "model": Param(
            "gpt-4o-mini",
            type="string",
            title="Model",
            description="model every request names (Azure OpenAI: the Global-Batch deployment name); checked before "
            "anything is split or submitted",
            section="Requests",
            examples=["gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1", "text-embedding-3-small", "claude-haiku-4-5"],
        ),
        "endpoint": Param(
            DEFAULT_ENDPOINT,
            enum=list(ENDPOINTS),
            title="Endpoint",
            description="Batch API endpoint the requests go to",
            section="Requests",
        ),
        "prompt_template": Param(
            "Classify the sentiment of this review of {product} ({stars} stars) as positive, "
            "negative or neutral: {text}",
            type="string",
            format="multiline",
            title="Prompt template",
            description="the user prompt, with {column} placeholders filled from each row; leave empty to use "
            "prompt_column",
            section="Requests",
        ),
        "prompt_column": optional(
            "string",
            title="Prompt column",
            description="column holding the prompt (if no template)",
            section="Requests",
        ),
        "system_prompt": Param(
            "Answer with one word.",
            type="string",
            format="multiline",
            title="System prompt",
            description="sent as the system message of every request (empty: none)",
            section="Requests",
        ),
        "body_options": Param(
            {"temperature": 0},
            type="object",
            title="Request body options",
            description="extra request body fields, e.g. temperature, max_completion_tokens",
            section="Requests",
            examples=[{"temperature": 0}, {"temperature": 0, "max_completion_tokens": 50}],
        ),
        "output_schema": optional(
            "object",
            title="Output schema",
            description="structured outputs: a JSON Schema object every answer must follow (strict: every object "
            "lists all its properties in required and sets additionalProperties false); its properties become "
            "typed columns (README 'Structured outputs'); empty: free text in response_text",
            section="Structured output",
            examples=[SENTIMENT_SCHEMA],
        ),
        "image_columns": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Image columns",
            description="columns of images sent beside the prompt (chat completions, responses, moderations): http(s) "
            "or data: URLs, or image bytes (sent as data URLs); a row whose image is null or not an image is "
            "skipped. Images cost input tokens (README 'Image inputs')",
            section="Requests",
            examples=[["image_url"], ["photo", "label_photo"]],
        ),
        "image_detail": Param(
            "auto",
            enum=["auto", "low", "high"],
            title="Image detail",
            description="how closely the model looks at each image: low costs a fixed few tokens per image, high "
            "counts its tiles; auto lets the model choose (estimated as high)",
            section="Requests",
        ),
        "max_requests_per_file": optional(
            "integer",
            minimum=1,
            maximum=VENDOR_MAX_REQUESTS,
            title="Requests per batch file",
            description="at most this many requests per batch file, i.e. per batch; empty: the vendor's limit "
            "(OpenAI 50,000; Azure OpenAI and Anthropic 100,000)",
            section="Limits and retries",
        ),
        "max_tokens_per_file": optional(
            "integer",
            minimum=1,
            title="Tokens per batch file",
            description="at most this many estimated input tokens per batch file, e.g. to stay under the "
            "account's enqueued-token limit (empty: no limit)",
            section="Limits and retries",
        ),
        "max_attempts": Param(
            3,
            type="integer",
            minimum=1,
            maximum=10,
            title="Attempts per file",
            description="batches per file at most: the first, then resubmissions of the lines that failed with "
            "a retryable error (429, 5xx, expired)",
            section="Limits and retries",
        ),
        "max_error_rate": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            title="Max error rate",
            description="refuse to load (the table stays as it was) when more rows than this ended in error",
            section="Limits and retries",
        ),
        "max_invalid_output_rate": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            title="Max invalid output rate",
            description="refuse to load when more rows than this got an answer that does not follow output_schema",
            section="Limits and retries",
        ),
        "target_table": Param(
            default_table,
            type="string",
            pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$",
            title="Target table",
            description="table (or schema.table) whose rows of the partition the results replace; must be allowed by "
            "OPENAI_BATCH_ALLOWED_TABLES",
            section="Warehouse",
        ),
        "warehouse_conn_id": optional(
            "string",
            title="Warehouse connection",
            description="a postgres or redshift connection id; empty: the DuckDB file $OPENAI_BATCH_DUCKDB",
            section="Warehouse",
        ),
        "expected_output_tokens": optional(
            "integer",
            minimum=0,
            title="Expected output tokens",
            description="output tokens per request for the cost estimate; empty: the body's max_tokens (or "
            "max_completion_tokens / max_output_tokens), if any",
            examples=[20, 200],
            section="Cost",
        ),
        "max_cost_usd": optional(
            "number",
            minimum=0,
            title="Budget cap (USD)",
            description="the run stops before submitting anything when its estimated cost at batch prices is above "
            "this; empty: no cap",
            examples=[5, 100],
            section="Cost",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="split and report only; submit nothing",
            section="Run",
        ),
        "reuse_results": Param(
            True,
            type="boolean",
            title="Reuse earlier answers",
            description="send only new, changed and unanswered requests: reuse the partition's answers from any "
            "earlier run (off: ask everything again)",
            section="Run",
        ),
    }
