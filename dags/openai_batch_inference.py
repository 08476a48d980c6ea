"""openai_batch_inference: one Parquet partition -> OpenAI Batch API -> a warehouse table.

split -> [per batch file: submit (creates the batch, then waits on the triggerer until it and its resubmissions
end) -> wait (the deferrable sensor: the batch's verdict) -> collect] -> load

Every task consults the partition's request ledger (in staging): the split leaves out requests answered in
any earlier run, submit creates each file's batch once across runs, collect records answers there, and load
merges them onto the rows and replaces the partition only when the results pass their checks.
prune_staging (independent): deletes staging areas of runs older than the retention.
"""

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, AssetAlias, CronDataIntervalTimetable, Param, task_group

from openai_batch.context import PARTITION_PATTERN
from openai_batch.notify import NotifySettings, dag_callbacks, task_callbacks
from openai_batch.operators import (
    CollectResultsOperator,
    LoadToWarehouseOperator,
    PruneStagingOperator,
    RunReportOperator,
    SplitPartitionOperator,
    SubmitBatchOperator,
)
from openai_batch.policy import from_env, run_time
from openai_batch.sensors import OpenAIBatchSensor

AIRFLOW_HOME = os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow"))
DATA_ROOT = os.environ.get("OPENAI_BATCH_DATA", os.path.join(AIRFLOW_HOME, "data"))  # absolute by default
# Settings every worker must agree on are read when a task runs, from an Airflow Variable (a secrets backend,
# AIRFLOW_VAR_OPENAI_BATCH_STAGING or the metadata DB), else the parsing host's environment, else the default.
STAGING_DEFAULT = os.environ.get("OPENAI_BATCH_STAGING", f"{DATA_ROOT}/staging")  # a directory or s3://bucket/prefix
STAGING_ROOT = run_time("openai_batch_staging", STAGING_DEFAULT)
STORAGE_CONN_ID = os.environ.get("OPENAI_BATCH_STORAGE_CONN_ID", "aws_default")  # for s3:// source and staging
RETRY_DELAY = timedelta(seconds=float(os.environ.get("OPENAI_BATCH_RETRY_DELAY_SECONDS", "30")))
QUEUE_WAIT = timedelta(seconds=float(os.environ.get("OPENAI_BATCH_QUEUE_WAIT_SECONDS", "600")))  # after a refusal
RETENTION = timedelta(days=float(os.environ.get("OPENAI_BATCH_STAGING_RETENTION_DAYS", "7")))
WAREHOUSE = run_time("openai_batch_duckdb", os.environ.get("OPENAI_BATCH_DUCKDB", f"{DATA_ROOT}/warehouse.duckdb"))
POLL_SECONDS = float(os.environ.get("OPENAI_BATCH_POLL_SECONDS", "60"))
MAX_PARALLEL_BATCHES = int(os.environ.get("OPENAI_BATCH_MAX_PARALLEL", "4"))  # batches in flight per run
MAX_PARALLEL_COLLECTS = int(os.environ.get("OPENAI_BATCH_MAX_PARALLEL_COLLECT", str(MAX_PARALLEL_BATCHES)))
SCHEDULE = os.environ.get("OPENAI_BATCH_SCHEDULE", "@daily")  # cron or preset; "none": manual and backfill runs
PARTITION_FORMAT = os.environ.get("OPENAI_BATCH_PARTITION_FORMAT", "%Y-%m-%d")  # e.g. %Y-%m-%dT%H for hourly
CONN_ID = "openai_default"
DEFAULT_TABLE = "review_sentiment"
# What the Params may reach is the deployment's decision (comma-separated; README "Security")
ALLOWED_SOURCES = from_env("OPENAI_BATCH_ALLOWED_SOURCES", DATA_ROOT)
ALLOWED_WAREHOUSE_CONNS = from_env("OPENAI_BATCH_ALLOWED_WAREHOUSE_CONNS", "")  # "" (DuckDB) is always allowed
ALLOWED_TABLES = from_env("OPENAI_BATCH_ALLOWED_TABLES", DEFAULT_TABLE)
RESULTS = AssetAlias("openai_batch_results")  # each load adds the Asset of the table it loaded (load.table_uri)
PRICES = "{{ var.json.get('openai_batch_prices', {}) }}"  # overrides of batchkit.pricing's batch prices (USD/1M)
POOL = os.environ.get("OPENAI_BATCH_POOL", "default_pool")  # e.g. a pool with include-deferred: batches across runs
# E-mail and Slack on failure, degraded success, optionally success (README "Notifications"); off by default
NOTIFY = NotifySettings.from_env()


with DAG(
    "openai_batch_inference",
    # A data-interval timetable: the run fired at the end of a period processes that period (yesterday's
    # partition at midnight), unlike "@daily" alone (CronTriggerTimetable), whose run would read the new day.
    schedule=None if SCHEDULE.lower() == "none" else CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=4,
    render_template_as_native_obj=True,
    default_args={
        "retries": 2,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
        **task_callbacks(NOTIFY),
    },
    **dag_callbacks(NOTIFY),
    tags=["openai", "batch"],
    doc_md=__doc__,
    params={
        "source": Param(
            f"{DATA_ROOT}/reviews/dt={{partition}}",
            type="string",
            description="Parquet file, directory or glob, local or s3://; {partition} is replaced by the partition",
        ),
        "partition": Param(
            "",
            type="string",
            pattern=f"^$|^{PARTITION_PATTERN.pattern}$",
            description="partition key, e.g. 2026-11-24; empty: the period the run covers (a scheduled run at "
            "midnight: the day that just closed; a backfill: each date)",
        ),
        "partition_format": Param(
            PARTITION_FORMAT,
            type="string",
            description="strftime format of the partition key taken from the run's data interval "
            "(%Y-%m-%d daily, %Y-%m-%dT%H hourly)",
        ),
        "model": Param("gpt-4o-mini", type="string"),
        "endpoint": Param("/v1/chat/completions", enum=["/v1/chat/completions", "/v1/responses", "/v1/embeddings"]),
        "prompt_template": Param(
            "Classify the sentiment of this review of {product} ({stars} stars) as positive, "
            "negative or neutral: {text}",
            type="string",
            description="{column} placeholders; leave empty to use prompt_column",
        ),
        "prompt_column": Param("", type="string", description="column holding the prompt (if no template)"),
        "system_prompt": Param("Answer with one word.", type="string"),
        "id_column": Param("review_id", type="string", description="unique id column (empty: row position)"),
        "input_columns": Param(
            [], type="array", items={"type": "string"}, description="input columns to keep in the table (empty: all)"
        ),
        "body_options": Param({"temperature": 0}, type="object", description="extra request body fields"),
        "output_schema": Param(
            None,
            type=["null", "object"],
            description="structured outputs: a JSON Schema object every answer must follow (strict); its "
            "properties become typed columns (README 'Structured outputs'); empty: free text in response_text",
        ),
        "target_table": Param(DEFAULT_TABLE, type="string", pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$"),
        "warehouse_conn_id": Param(
            "", type="string", description="a postgres connection id; empty: the DuckDB file $OPENAI_BATCH_DUCKDB"
        ),
        "max_requests_per_file": Param(50_000, type="integer", minimum=1, maximum=50_000),
        "max_tokens_per_file": Param(None, type=["null", "integer"], minimum=1),
        "max_attempts": Param(3, type="integer", minimum=1, maximum=10),
        "max_error_rate": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            description="refuse to load (the table stays as it was) when more rows than this ended in error",
        ),
        "max_invalid_output_rate": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            description="refuse to load when more rows than this got an answer that does not follow output_schema",
        ),
        "expected_output_tokens": Param(
            None,
            type=["null", "integer"],
            minimum=0,
            description="output tokens per request for the cost estimate; empty: the body's max_tokens, if any",
        ),
        "max_cost_usd": Param(
            None,
            type=["null", "number"],
            minimum=0,
            description="budget cap: the run stops before submitting anything when its estimated cost (batch "
            "prices) is above this; empty: no cap",
        ),
        "dry_run": Param(False, type="boolean", description="split and report only; submit nothing"),
        "reuse_results": Param(
            True,
            type="boolean",
            description="send only new, changed and unanswered requests: reuse the partition's answers from any "
            "earlier run (off: ask everything again)",
        ),
    },
) as dag:
    # Text Params are passed as DagParams, not "{{ params.x }}": under native rendering a text such as "123"
    # or "None" would turn into a number or None.
    split = SplitPartitionOperator(
        task_id="split",
        source=dag.param("source"),
        staging_root=STAGING_ROOT,
        model=dag.param("model"),
        endpoint=dag.param("endpoint"),
        prompt_template=dag.param("prompt_template"),
        prompt_column=dag.param("prompt_column"),
        system_prompt=dag.param("system_prompt"),
        id_column=dag.param("id_column"),
        body_options="{{ params.body_options }}",
        max_requests="{{ params.max_requests_per_file }}",
        max_tokens="{{ params.max_tokens_per_file }}",
        dry_run="{{ params.dry_run }}",
        input_columns="{{ params.input_columns }}",
        reuse_results="{{ params.reuse_results }}",
        output_schema=dag.param("output_schema"),
        expected_output_tokens="{{ params.expected_output_tokens }}",
        max_cost_usd="{{ params.max_cost_usd }}",
        prices=PRICES,
        conn_id=CONN_ID,
        storage_conn_id=STORAGE_CONN_ID,
        allowed_sources=ALLOWED_SOURCES,
    )

    @task_group(group_id="batch")
    def per_batch_file(batch_file):
        submit = SubmitBatchOperator(
            task_id="submit",
            batch_file=batch_file,
            staging_root=STAGING_ROOT,
            endpoint=dag.param("endpoint"),
            conn_id=CONN_ID,
            storage_conn_id=STORAGE_CONN_ID,
            max_attempts="{{ params.max_attempts }}",
            poll_interval=POLL_SECONDS,
            queue_wait=QUEUE_WAIT,
            max_active_tis_per_dagrun=MAX_PARALLEL_BATCHES,  # deferred until its batches end: the in-flight bound
            pool=POOL,
        )
        wait = OpenAIBatchSensor(
            task_id="wait",
            batch_id=submit.output,
            conn_id=CONN_ID,
            poll_interval=POLL_SECONDS,
            max_active_tis_per_dagrun=MAX_PARALLEL_BATCHES,
        )
        collect = CollectResultsOperator(
            task_id="collect",
            batch_file=batch_file,
            batch_id=submit.output,
            staging_root=STAGING_ROOT,
            conn_id=CONN_ID,
            storage_conn_id=STORAGE_CONN_ID,
            poll_interval=POLL_SECONDS,
            queue_wait=QUEUE_WAIT,
            max_attempts="{{ params.max_attempts }}",
            max_active_tis_per_dagrun=MAX_PARALLEL_COLLECTS,
        )
        wait >> collect
        return collect

    collected = per_batch_file.expand(batch_file=split.output)

    load = LoadToWarehouseOperator(
        task_id="load",
        results="{{ ti.xcom_pull(task_ids='batch.collect') }}",
        split="{{ ti.xcom_pull(task_ids='split', key='split') }}",
        staging_root=STAGING_ROOT,
        database=WAREHOUSE,
        table=dag.param("target_table"),
        warehouse_conn_id=dag.param("warehouse_conn_id"),
        max_error_rate="{{ params.max_error_rate }}",
        max_invalid_output_rate="{{ params.max_invalid_output_rate }}",
        prices=PRICES,
        storage_conn_id=STORAGE_CONN_ID,
        allowed_warehouse_conns=ALLOWED_WAREHOUSE_CONNS,
        allowed_tables=ALLOWED_TABLES,
        outlets=[RESULTS],
    )
    collected >> load

    # A teardown: it runs whatever happened before it, and the run's state stays the pipeline's own.
    report = RunReportOperator(
        task_id="report",
        split="{{ ti.xcom_pull(task_ids='split', key='split') }}",
        results="{{ ti.xcom_pull(task_ids='batch.collect') }}",
        load="{{ ti.xcom_pull(task_ids='load') }}",
        staging_root=STAGING_ROOT,
        storage_conn_id=STORAGE_CONN_ID,
        prices=PRICES,
    ).as_teardown()
    load >> report

    PruneStagingOperator(
        task_id="prune_staging",
        staging_root=STAGING_ROOT,
        retention=RETENTION,
        source=dag.param("source"),
        storage_conn_id=STORAGE_CONN_ID,
    )
