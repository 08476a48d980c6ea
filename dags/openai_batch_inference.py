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

from datetime import datetime

from airflow.sdk import DAG, CronDataIntervalTimetable

from openai_batch.notify import dag_callbacks
from openai_batch.params import inference_params
from openai_batch.pipeline import batch_pipeline
from openai_batch.settings import DEFAULT_TABLE, PipelineSettings

# Read once from the environment of the host parsing this file, every worker's included (README "Settings"); the
# staging root and DuckDB file are read when each task runs, from an Airflow Variable when one is set.
SETTINGS = PipelineSettings.from_env()
# A data-interval timetable: the run fired at the end of a period processes that period (yesterday's partition at
# midnight), unlike "@daily" alone (CronTriggerTimetable), whose run would read the new day. "none": manual runs.
SCHEDULE = SETTINGS.schedule.lower() != "none" and CronDataIntervalTimetable(SETTINGS.schedule, timezone="UTC")

with DAG(
    "openai_batch_inference",
    schedule=SCHEDULE or None,
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=4,
    render_template_as_native_obj=True,
    **dag_callbacks(SETTINGS.notify),
    tags=["openai", "batch"],
    doc_md=__doc__,
    params=inference_params(SETTINGS.data_root, SETTINGS.partition_format, DEFAULT_TABLE, SETTINGS.conn_id),
) as dag:
    # Every choice of the pipeline is one of the Params above (the trigger form), at the top level of the DAG.
    batch_pipeline(settings=SETTINGS)
