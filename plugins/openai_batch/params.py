"""The Params of the ``openai_batch_inference`` DAG: its trigger form, in sections, each with a title, a
description and examples. The split options' Params are built from their declarations (``SplitConfig``'s fields,
``batchkit.split.options``); the pipeline's own are written here."""

import copy
from dataclasses import MISSING
from typing import Any

from airflow.sdk import Param

from batchkit.sentiment import SENTIMENT_SCHEMA
from batchkit.split.options import declared, default_of
from batchkit.split.split_config import SplitConfig
from openai_batch.context import PARTITION_PATTERN

# The trigger form: its sections in order, each with its Params in order
FORM = {
    "Input": ("source", "partition", "partition_format", "id_column", "input_columns"),
    "Requests": (
        *("conn_id", "model", "endpoint", "prompt_template", "prompt_column", "system_prompt", "body_options"),
        *("image_columns", "image_detail"),
    ),
    "Structured output": ("output_schema",),
    "Limits and retries": (
        "max_requests_per_file",
        "max_tokens_per_file",
        "max_attempts",
        "max_error_rate",
        "max_invalid_output_rate",
    ),
    "Warehouse": ("target_table", "warehouse_conn_id"),
    "Cost": ("expected_output_tokens", "max_cost_usd"),
    "Run": ("dry_run", "reuse_results"),
}
VENDOR_MAX_REQUESTS = 100_000  # the largest batch of any built-in vendor (the split checks the connection's own)
# The shipped DAG's form of the split options over their declarations: fitted to the sample reviews (``make demo``)
# and to every vendor
SAMPLE = {
    "max_requests": {"maximum": VENDOR_MAX_REQUESTS},
    "id_column": {"default": "review_id"},
    "prompt_template": {
        "default": "Classify the sentiment of this review of {product} ({stars} stars) as positive, negative or "
        "neutral: {text}"
    },
    "system_prompt": {"default": "Answer with one word."},
    "body_options": {"default": {"temperature": 0}},
    "output_schema": {"examples": [SENTIMENT_SCHEMA]},
}


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
    own = {
        "source": Param(
            f"{data_root}/reviews/dt={{partition}}",
            type="string",
            title="Source",
            description="Parquet file, directory or glob, local or s3://; {partition} is replaced by the partition "
            "key, {partition:%H} (any strftime format) by its time, e.g. dt={partition:%Y-%m-%d}/hr={partition:%H}",
            examples=["s3://my-lake/reviews/dt={partition}/", f"{data_root}/reviews/dt={{partition}}/*.parquet"],
        ),
        "partition": optional(
            "string",
            pattern=f"^$|^{PARTITION_PATTERN.pattern}$",
            title="Partition",
            description="partition key, e.g. 2026-11-24; empty: the period the run covers (a scheduled run at "
            "midnight: the day that just closed; a backfill: each date)",
            examples=["2026-11-24", "2026-11-24T13"],
        ),
        "partition_format": Param(
            partition_format,
            type="string",
            title="Partition format",
            description="strftime format of the partition key taken from the run's data interval "
            "(%Y-%m-%d daily, %Y-%m-%dT%H hourly)",
            examples=["%Y-%m-%d", "%Y-%m-%dT%H"],
        ),
        "conn_id": Param(
            conn_id,
            type="string",
            minLength=1,
            title="Batch API connection",
            description="the connection whose vendor runs the batches: openai (OpenAI or any compatible API), an "
            "openai connection on an Azure OpenAI resource, or anthropic (README 'Vendors'); one of "
            "OPENAI_BATCH_ALLOWED_API_CONNS",
        ),
        "max_attempts": Param(
            3,
            type="integer",
            minimum=1,
            maximum=10,
            title="Attempts per file",
            description="batches per file at most: the first, then resubmissions of the lines that failed with "
            "a retryable error (429, 5xx, expired)",
        ),
        "max_error_rate": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            title="Max error rate",
            description="refuse to load (the table stays as it was) when more rows than this ended in error",
        ),
        "max_invalid_output_rate": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            title="Max invalid output rate",
            description="refuse to load when more rows than this got an answer that does not follow output_schema",
        ),
        "target_table": Param(
            default_table,
            type="string",
            pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$",
            title="Target table",
            description="table (or schema.table) whose rows of the partition the results replace; must be allowed by "
            "OPENAI_BATCH_ALLOWED_TABLES",
        ),
        "warehouse_conn_id": optional(
            "string",
            title="Warehouse connection",
            description="a postgres or redshift connection id; empty: the DuckDB file $OPENAI_BATCH_DUCKDB",
        ),
        "max_cost_usd": optional(
            "number",
            minimum=0,
            title="Budget cap (USD)",
            description="the run stops before submitting anything when its estimated cost at batch prices is above "
            "this; empty: no cap",
            examples=[5, 100],
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="split and report only; submit nothing",
        ),
        "reuse_results": Param(
            True,
            type="boolean",
            title="Reuse earlier answers",
            description="send only new, changed and unanswered requests: reuse the partition's answers from any "
            "earlier run (off: ask everything again)",
        ),
    }
    params = own | split_params(SAMPLE)
    layout = {name: section for section, names in FORM.items() for name in names}
    if set(layout) != set(params):
        raise ValueError(f"the form's layout and its Params differ: {sorted(set(layout) ^ set(params))}")
    for name, section in layout.items():
        params[name].schema["section"] = section
    return {name: params[name] for name in layout}


def split_params(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Param]:
    """The Params of the split options that have one (a ``form`` in their declaration), by Param name;
    ``overrides``: form data over the declarations', by option name (e.g. another default)."""
    params = {}
    for each, spec in declared(SplitConfig):
        if spec.param is None:
            continue
        schema = copy.deepcopy({**spec.form, **(overrides or {}).get(each.name, {})})  # each DAG its own
        default = schema.pop("default") if "default" in schema else default_of(each)
        if default is MISSING:
            raise ValueError(f"split option {each.name} is required: its form needs a default")
        if spec.choices:
            params[spec.param] = Param(default, enum=list(spec.choices), **schema)
        elif default is None:
            params[spec.param] = optional(spec.kind, **schema)
        else:
            params[spec.param] = Param(default, type=spec.kind, **schema)
    return params
