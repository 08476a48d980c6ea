"""
# openai_batch_inference

One Parquet partition → OpenAI Batch API → a warehouse table, exactly once per request.

```
split ─► batch (one mapped instance per batch file: submit ─► wait ─► collect) ─► load
prune_staging (independent)
```

1. **split** reads the partition (`source`, `{partition}` filled in) and writes batch files of at most
   `max_requests_per_file` requests into the run's staging area. Each mapped instance of **batch** is named
   after its file, e.g. `batch-00003 · 50,000 req`.
2. **batch.submit** uploads its file and creates the batch, then defers: the **triggerer** polls the batch (no
   worker slot is held) and retryable lines (429, 5xx, expired) are resubmitted, up to `max_attempts` batches.
   The *OpenAI batch* link on the task opens the batch (platform.openai.com, or the emulator's JSON); its log
   shows `completed/failed/total (x%)` and an ETA while the batch runs.
3. **batch.wait** is the batch's verdict (a deferrable sensor; in this DAG the batch has ended when it runs).
   **batch.collect** makes sure every answer of the file is recorded.
4. **load** merges the answers onto the input rows and replaces the partition in `target_table` only when the
   error rates stay under `max_error_rate` and `max_invalid_output_rate`; otherwise the table stays as it was.

**Exactly once.** Every task consults the partition's request ledger (`<staging>/<dag_id>/<partition>/_ledger`):
the split leaves out requests answered in any earlier run (`reuse_results`), submit claims each file's batch
before creating it, so a retry, a clear or an overlapping run adopts that batch instead of paying twice, and
collect records the answers there. Retrying or clearing any task is safe.

**Where results go.** The DuckDB file `$OPENAI_BATCH_DUCKDB` by default, or the postgres or redshift connection
named by `warehouse_conn_id`; one row per input row with its answer (`response_text`, or typed columns with an
`output_schema`), status and error. Each load emits an asset event for the table (alias
`openai_batch_results`). Staging areas older than the retention are deleted by **prune_staging**.
"""

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, AssetAlias, CronDataIntervalTimetable, task_group

from openai_batch.notify import NotifySettings, dag_callbacks, task_callbacks
from openai_batch.operators import (
    CollectResultsOperator,
    LoadToWarehouseOperator,
    PruneStagingOperator,
    RunReportOperator,
    SplitPartitionOperator,
    SubmitBatchOperator,
)
from openai_batch.params import inference_params
from openai_batch.policy import from_env, run_time
from openai_batch.sensors import OpenAIBatchSensor

AIRFLOW_HOME = os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow"))
DATA_ROOT = os.environ.get("OPENAI_BATCH_DATA", os.path.join(AIRFLOW_HOME, "data"))  # absolute by default
# Settings every worker must agree on are read when a task runs, from an Airflow Variable (a secrets backend,
# AIRFLOW_VAR_OPENAI_BATCH_STAGING or the metadata DB), else the parsing host's environment, else the default.
STAGING_DEFAULT = os.environ.get("OPENAI_BATCH_STAGING", f"{DATA_ROOT}/staging")  # a directory or s3://bucket/prefix
STAGING_ROOT = run_time("openai_batch_staging", STAGING_DEFAULT)
STORAGE_CONN_ID = os.environ.get("OPENAI_BATCH_STORAGE_CONN_ID", "aws_default")  # for s3:// source and staging
RETRIES = int(os.environ.get("OPENAI_BATCH_TASK_RETRIES", "2"))
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
RESULTS = AssetAlias(
    "openai_batch_results"
)  # each load adds the Asset of the table it loaded (openai_batch.warehouses.table_uri)
PRICES = "{{ var.json.get('openai_batch_prices', {}) }}"  # overrides of batchkit.pricing's batch prices (USD/1M)
TASK_MEMORY_MB = int(os.environ.get("OPENAI_BATCH_TASK_MEMORY_MB", "800"))  # per task process; the load spills beyond
POOL = os.environ.get("OPENAI_BATCH_POOL", "default_pool")  # e.g. a pool with include-deferred: batches across runs
# E-mail and Slack on failure, degraded success, optionally success (README "Notifications"); off by default
NOTIFY = NotifySettings.from_env()
# The UI names each mapped instance of the batch group after its file, e.g. "batch-00003 · 50,000 req" (rendered on
# the worker with the task's context once its fields, batch_file included, are rendered)
BATCH_FILE_LABEL = (
    "{{ task.batch_file.path.rsplit('/', 1)[-1].removesuffix('.jsonl') }} · "
    "{{ '{:,}'.format(task.batch_file.requests) }} req"
)


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
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
        **task_callbacks(NOTIFY),
    },
    **dag_callbacks(NOTIFY),
    tags=["openai", "batch"],
    doc_md=__doc__,
    params=inference_params(DATA_ROOT, PARTITION_FORMAT, DEFAULT_TABLE),
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
        warehouse_conn_id=dag.param("warehouse_conn_id"),
        table=dag.param("target_table"),
        database=WAREHOUSE,
        allowed_warehouse_conns=ALLOWED_WAREHOUSE_CONNS,
        allowed_tables=ALLOWED_TABLES,
        doc_md="Splits the partition into batch files in the run's staging area, leaving out requests the "
        "ledger already answered; checks the model first. A retry or clear splits again (nothing was submitted).",
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
            map_index_template=BATCH_FILE_LABEL,
            doc_md="Uploads this batch file, creates its batch once (claimed in the ledger), then waits on the "
            "triggerer and resubmits retryable lines. A retry or clear adopts the batch already created: a file "
            "is never paid for twice. *OpenAI batch* opens the batch.",
        )
        wait = OpenAIBatchSensor(
            task_id="wait",
            batch_id=submit.output,
            batch_file=batch_file,
            conn_id=CONN_ID,
            poll_interval=POLL_SECONDS,
            max_active_tis_per_dagrun=MAX_PARALLEL_BATCHES,
            map_index_template=BATCH_FILE_LABEL,
            doc_md="The batch's verdict: waits on the triggerer until it is terminal (here it already is: submit follows it); "
            "fails on a failed batch. A retry or clear polls the same batch again; marking it failed cancels it.",
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
            map_index_template=BATCH_FILE_LABEL,
            doc_md="Makes sure every answer of this file's batches is in the ledger (downloads what is missing, "
            "resubmits what may still be answered). A retry or clear finds them recorded and does no new work.",
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
        task_memory_mb=TASK_MEMORY_MB,
        outlets=[RESULTS],
        doc_md="Merges the ledger's answers onto the staged rows and replaces the partition in the table, unless "
        "too many rows failed (the table then stays as it was). A retry or clear loads the same rows again.",
    )
    collected >> load

    # A teardown: it runs whatever happened before it, and the run's state stays the pipeline's own.
    report = RunReportOperator(
        task_id="report",
        split="{{ ti.xcom_pull(task_ids='split', key='split') }}",
        results="{{ ti.xcom_pull(task_ids='batch.collect') }}",
        load="{{ ti.xcom_pull(task_ids='load', key='numbers') }}",  # pushed even when the load refuses
        staging_root=STAGING_ROOT,
        storage_conn_id=STORAGE_CONN_ID,
        prices=PRICES,
        doc_md="Writes report/report.html and report.png into the run's staging area, whatever happened before "
        "it (a teardown: it never decides the run's state): files, batches, tokens, cost, errors. A clear "
        "rewrites it.",
    ).as_teardown()
    load >> report

    PruneStagingOperator(
        task_id="prune_staging",
        staging_root=STAGING_ROOT,
        retention=RETENTION,
        source=dag.param("source"),
        storage_conn_id=STORAGE_CONN_ID,
        doc_md="Deletes staging areas of runs older than the retention (never the ledger). Safe to retry or clear.",
    )
