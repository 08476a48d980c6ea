"""Operators of the batch pipeline: split -> submit -> (sensor) -> collect -> load.

They stay thin: the work is done by ``batchkit`` (Airflow-free) and the hook. XComs carry paths, ids
and counts only, never data.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from batchkit.errors import BatchkitError
from batchkit.manifest import MANIFEST_NAME
from openai_batch.context import batch_key, partition_key
from openai_batch.statuses import METADATA_KEY, NOT_ADOPTABLE, QUEUE_FULL, TERMINAL, queue_full

if TYPE_CHECKING:
    from openai_batch.hooks import OpenAIBatchHook

# The OpenAI SDK, pyarrow and DuckDB are imported inside execute(): DAG files that use these operators
# must parse fast, and only the tasks that run need them.


def as_bool(value: Any) -> bool:
    """A templated flag: rendered Params may arrive as ``"False"`` when native rendering does not apply."""
    return value.strip().lower() in ("true", "1", "yes") if isinstance(value, str) else bool(value)


def as_list(value: Any) -> list[str]:
    """A templated list of names that may arrive as its text (``"['a', 'b']"``) or as ``"a, b"``."""
    if isinstance(value, str):
        import ast

        text = value.strip()
        value = ast.literal_eval(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
    return list(value or [])


def as_dict(value: Any) -> dict[str, Any]:
    """A templated JSON object that may arrive as its text."""
    if isinstance(value, str):
        import ast

        value = ast.literal_eval(value) if value.strip() else {}
    if not isinstance(value, dict):
        raise AirflowFailException(f"expected a JSON object, got {value!r}")
    return value


def wait_then_retry(task: Any, waits: int, method: str, kwargs: dict[str, Any], reason: str) -> None:
    """A batch creation was refused (rate or queue limits): defer ``task`` for its ``queue_wait`` (a
    DateTimeTrigger on the triggerer: no worker slot is held), then call ``method`` with ``kwargs`` and
    ``waits + 1``. After ``max_queue_waits`` waits, fail instead."""
    from datetime import UTC, datetime

    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    if waits >= task.max_queue_waits:
        raise AirflowException(
            f"batch creation was still refused after waiting {waits} x {task.queue_wait} ({reason}); raise the "
            "account's limits or the DAG's queue wait, then clear the task"
        )
    task.log.warning(
        "%s; trying again in %s (wait %d of at most %d)", reason, task.queue_wait, waits + 1, task.max_queue_waits
    )
    task.defer(
        trigger=DateTimeTrigger(moment=datetime.now(UTC) + task.queue_wait),
        method_name=method,
        kwargs={**kwargs, "waits": waits + 1},
    )


class SplitPartitionOperator(BaseOperator):
    """Split the run's partition into batch input files in the run's staging directory.

    Checks the model exists before anything else, so a typo fails the run before anything is submitted.

    :param source: Parquet file, directory or glob, local or ``s3://``; ``{partition}`` is replaced by the
        partition key.
    :param staging_root: local directory or ``s3://bucket/prefix`` holding run-scoped staging areas
        (``<root>/<dag_id>/<partition>/<run_id>/inputs`` for this step).
    :param storage_conn_id: the ``aws`` connection for ``s3://`` source and staging (empty: default credentials).
    :param dry_run: split and report only; return no files, so nothing is submitted.
    :returns: one small descriptor per batch file (index, path, requests, bytes, sha256, manifest, partition).
    """

    template_fields = (
        "source",
        "staging_root",
        "model",
        "endpoint",
        "prompt_column",
        "prompt_template",
        "system_prompt",
        "id_column",
        "max_requests",
        "max_tokens",
        "body_options",
        "dry_run",
    )

    def __init__(
        self,
        *,
        source: str,
        staging_root: str,
        model: str,
        endpoint: str = "/v1/chat/completions",
        prompt_column: str | None = None,
        prompt_template: str | None = None,
        system_prompt: str | None = None,
        id_column: str | None = None,
        max_requests: int = 50_000,
        max_tokens: int | None = None,
        body_options: dict | None = None,
        dry_run: bool = False,
        conn_id: str = "openai_default",
        storage_conn_id: str | None = None,
        check_model: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.storage_conn_id = storage_conn_id
        self.source, self.staging_root, self.model, self.endpoint = source, staging_root, model, endpoint
        self.prompt_column, self.prompt_template, self.system_prompt = prompt_column, prompt_template, system_prompt
        self.id_column, self.max_requests, self.max_tokens = id_column, max_requests, max_tokens
        self.body_options, self.dry_run, self.conn_id, self.check_model = body_options, dry_run, conn_id, check_model

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from batchkit.splitter import split
        from openai_batch.staging import RunStaging, connect_storage

        partition = partition_key(context)
        source = self.source.replace("{partition}", partition)
        connect_storage(source, self.storage_conn_id)
        staging = RunStaging(self.staging_root, context, self.storage_conn_id)
        if self.check_model:
            self._check_model()
        with staging.scratch() as scratch:
            try:
                manifest = split(source, scratch / "split", self._config(), self._progress)
            except BatchkitError as exc:
                raise AirflowFailException(f"cannot split partition {partition} ({source}): {exc}") from None
            paths = [staging.publish(scratch / "split" / f.path, "inputs", f.path) for f in manifest.files]
            manifest_url = staging.publish(scratch / "split" / MANIFEST_NAME, "inputs", MANIFEST_NAME)
        totals = manifest.totals
        self.log.info(
            "partition %s: %d rows -> %d requests in %d file(s), %.1f MB, ~%d tokens; %d row(s) skipped "
            "(null/empty prompt); manifest %s",
            partition,
            totals["rows_read"],
            totals["requests"],
            totals["files"],
            totals["bytes"] / 1e6,
            totals["estimated_tokens"],
            totals["rows_skipped"],
            manifest_url,
        )
        if as_bool(self.dry_run):
            self.log.info("dry_run is set: nothing will be submitted")
            return []
        return [
            {
                "index": i,
                "path": path,
                "requests": f.requests,
                "bytes": f.bytes,
                "sha256": f.sha256,
                "manifest": manifest_url,
                "partition": partition,
            }
            for i, (f, path) in enumerate(zip(manifest.files, paths, strict=True))
        ]

    def _config(self) -> Any:
        from batchkit.splitter import SplitConfig

        try:
            return SplitConfig(
                model=self.model,
                endpoint=self.endpoint,
                prompt_column=self.prompt_column or None,
                prompt_template=self.prompt_template or None,
                system_prompt=self.system_prompt or None,
                id_column=self.id_column or None,
                max_requests=int(self.max_requests),
                max_tokens=int(self.max_tokens) if self.max_tokens else None,
                body_options=self.body_options or {},
            )
        except BatchkitError as exc:
            raise AirflowFailException(f"invalid split parameters: {exc}") from None

    def _check_model(self) -> None:
        import openai

        from openai_batch.hooks import OpenAIBatchHook

        try:
            OpenAIBatchHook(conn_id=self.conn_id).conn.models.retrieve(self.model)
        except openai.NotFoundError:
            raise AirflowFailException(
                f"model {self.model!r} does not exist at this endpoint (or this key has no "
                "access to it); nothing was submitted"
            ) from None

    def _progress(self, rows: int, files: int) -> None:
        if rows and rows % 500_000 < 4096:
            self.log.info("split progress: %d rows read, %d file(s) started", rows, files)


class SubmitBatchOperator(BaseOperator):
    """Upload one batch file and create its batch, idempotently.

    The batch is tagged with a deterministic key (DAG, run, task, map index, file digest). A retry or a
    cleared rerun first looks for the batch it already made (task state store, then the key in the batches'
    metadata) and adopts it unless it failed, expired or was cancelled: no batch is ever created twice.

    :param batch_file: a descriptor from ``SplitPartitionOperator`` (templated); its file is streamed from
        staging (local or ``s3://`` through ``storage_conn_id``) to the Files API.
    :param endpoint: Batch API endpoint; ``completion_window``, ``metadata`` and ``output_expires_after``
        are passed to ``batches.create``.
    :returns: the batch id.
    """

    template_fields = ("batch_file", "endpoint", "metadata")

    def __init__(
        self,
        *,
        batch_file: dict[str, Any],
        endpoint: str = "/v1/chat/completions",
        conn_id: str = "openai_default",
        storage_conn_id: str | None = None,
        completion_window: str = "24h",
        metadata: dict[str, str] | None = None,
        output_expires_after: dict[str, Any] | None = None,
        queue_wait: timedelta = timedelta(minutes=10),
        max_queue_waits: int = 12,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_file, self.endpoint, self.conn_id = batch_file, endpoint, conn_id
        self.storage_conn_id, self.queue_wait, self.max_queue_waits = storage_conn_id, queue_wait, max_queue_waits
        self.completion_window, self.metadata, self.output_expires_after = (
            completion_window,
            metadata,
            output_expires_after,
        )

    def execute(self, context: Any, waits: int = 0, event: Any = None) -> str:
        import openai

        from openai_batch.hooks import OpenAIBatchHook
        from openai_batch.staging import connect_storage

        hook = OpenAIBatchHook(conn_id=self.conn_id)
        key = batch_key(context, self.batch_file["sha256"])
        state = context["task_state_store"]
        saved = state.get("batch_id")
        if saved:
            batch = hook.get_batch(saved)
            if batch.status not in NOT_ADOPTABLE:
                self.log.info("adopting batch %s (%s) recorded by an earlier try", batch.id, batch.status)
                return batch.id
            self.log.warning("batch %s of an earlier try is %s; submitting a new one", batch.id, batch.status)
        else:
            found = hook.find_batch(key)
            if found:
                self.log.info("adopting batch %s (%s) found by its key %s", found.id, found.status, key)
                state.set("batch_id", found.id)
                return found.id
        ti = context["ti"]
        metadata = {
            **(self.metadata or {}),
            "airflow_dag_id": ti.dag_id,
            "airflow_run_id": ti.run_id[:512],
            "airflow_task": f"{ti.task_id}[{ti.map_index}]",
            "partition": self.batch_file["partition"],
            "file_sha256": self.batch_file["sha256"][:32],
            METADATA_KEY: key,
        }
        extra = {"output_expires_after": self.output_expires_after} if self.output_expires_after else {}
        connect_storage(self.batch_file["path"], self.storage_conn_id)
        try:
            batch = hook.submit_file(
                key,
                self.batch_file["path"],
                endpoint=self.endpoint,
                completion_window=self.completion_window,
                metadata=metadata,
                **extra,
            )
        except openai.RateLimitError as exc:
            wait_then_retry(self, waits, "execute", {}, f"batch creation refused: {exc.message}")
        state.set("batch_id", batch.id)
        self.log.info("batch %s holds %d requests", batch.id, self.batch_file["requests"])
        return batch.id


class CollectResultsOperator(BaseOperator):
    """Download a batch's output and error files, resubmit retryable lines, merge results onto the input rows.

    Retryable lines (429, 5xx, expired) are resubmitted as a new batch up to ``max_attempts`` batches in all,
    waiting on the triggerer between attempts. Every input row owned by the batch file is written to the run's
    ``merged/result-NNNNN.parquet`` with status ``ok`` or ``error`` (code and message), never dropped; the raw
    files are kept in ``outputs/NNNNN/``, ``errors/NNNNN/`` and ``inputs/retry-*`` (see ``RunStaging``).

    :returns: ``{"path", "rows", "ok", "errors", "batch_ids"}``.
    """

    template_fields = ("batch_file", "batch_id", "staging_root", "max_attempts", "input_columns")

    def __init__(
        self,
        *,
        batch_file: dict[str, Any],
        batch_id: str,
        staging_root: str,
        conn_id: str = "openai_default",
        storage_conn_id: str | None = None,
        max_attempts: int = 3,
        poll_interval: float = 60,
        completion_window: timedelta = timedelta(hours=24),
        queue_wait: timedelta = timedelta(minutes=10),
        max_queue_waits: int = 12,
        input_columns: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_file, self.batch_id, self.staging_root, self.conn_id = batch_file, batch_id, staging_root, conn_id
        self.max_attempts, self.poll_interval, self.completion_window = max_attempts, poll_interval, completion_window
        self.queue_wait, self.input_columns, self.storage_conn_id = queue_wait, input_columns, storage_conn_id
        self.max_queue_waits = max_queue_waits

    def execute(self, context: Any) -> dict[str, Any]:
        return self.collect(context, [self.batch_id])

    def collect(
        self,
        context: Any,
        batch_ids: list[str],
        event: dict[str, Any] | None = None,
        waited: bool = False,
        waits: int = 0,
    ) -> dict[str, Any]:
        from batchkit.manifest import Manifest
        from batchkit.results import latest_results, merge_with_inputs
        from openai_batch.hooks import OpenAIBatchHook
        from openai_batch.staging import RunStaging, connect_storage

        hook = OpenAIBatchHook(conn_id=self.conn_id)
        if isinstance(event, dict) and event.get("status") == "timeout":
            hook.cancel_batch(batch_ids[-1])
            raise AirflowException(f"retry batch {batch_ids[-1]} did not finish in time; cancelled it")
        staging = RunStaging(self.staging_root, context, self.storage_conn_id)
        name = f"{self.batch_file['index']:05d}"
        batches = [hook.get_batch(batch_id) for batch_id in batch_ids]
        with staging.scratch() as scratch:
            attempts = [
                self._download(hook, staging, batch, scratch, f"{name}/attempt-{n}.jsonl")
                for n, batch in enumerate(batches, start=1)
            ]
            final = latest_results(attempts)
            retry = {cid for cid, result in final.items() if result.retryable}
            if retry and len(batch_ids) < int(self.max_attempts):
                if not waited and queue_full(batches[-1].errors):
                    reason = f"batch {batch_ids[-1]} was refused for the enqueued-token limit"
                    return wait_then_retry(self, waits, "collect", {"batch_ids": batch_ids, "waited": True}, reason)
                return self._resubmit(context, hook, staging, scratch, batches, retry, waits)
            manifest = Manifest.load(self.batch_file["manifest"])
            connect_storage(manifest.parameters["source"], self.storage_conn_id)
            out = scratch / f"result-{name}.parquet"
            try:
                columns = as_list(self.input_columns)
                counts = merge_with_inputs(manifest, self.batch_file["index"], final, out, columns or None)
            except BatchkitError as exc:
                raise AirflowException(f"results of {batch_ids} are incomplete: {exc}") from None
            merged = staging.publish(out, "merged", out.name)
        self.log.info(
            "merged %d rows (%d ok, %d error) from batch(es) %s into %s",
            counts["rows"],
            counts["ok"],
            counts["errors"],
            ", ".join(batch_ids),
            merged,
        )
        if retry:
            self.log.warning(
                "%d line(s) still failed after %d attempts; they are loaded with status 'error'",
                len(retry),
                len(batch_ids),
            )
        return {
            "path": merged,
            **counts,
            "batch_ids": batch_ids,
            "manifest": self.batch_file["manifest"],
            "requests": self.batch_file["requests"],
            "resubmitted": sum(len(a) for a in attempts[1:]),
        }

    def _download(self, hook: OpenAIBatchHook, staging: Any, batch: Any, scratch: Path, name: str) -> list:
        """Results of one batch; its output and error files are kept in the run's ``outputs/`` and ``errors/``."""
        from batchkit.results import parse_lines

        batch_id = batch.id
        if batch.status == "failed" and queue_full(batch.errors):  # nothing ran: every request is to be resubmitted
            return self._refused_requests(hook, batch, scratch / f"{batch_id}-input.jsonl")
        if batch.status == "failed":
            errors = "; ".join(f"{e.code}: {e.message}" for e in (batch.errors.data if batch.errors else []))
            raise AirflowException(f"batch {batch_id} failed: {errors}")
        results = []
        for kind, file_id in (("outputs", batch.output_file_id), ("errors", batch.error_file_id)):
            if file_id:
                path = scratch / kind / name
                size = hook.download(file_id, path)
                results.extend(parse_lines(path, batch_id))
                kept = staging.publish(path, kind, name)
                self.log.info("downloaded file %s of %s (%d bytes) to %s", file_id, batch_id, size, kept)
        counts = batch.request_counts
        if batch.status == "completed" and counts and len(results) != counts.total:
            raise AirflowException(
                f"batch {batch_id} reports {counts.total} requests but its files hold {len(results)} results"
            )
        return results

    def _refused_requests(self, hook: OpenAIBatchHook, batch: Any, path: Path) -> list:
        import orjson

        from batchkit.results import Result

        hook.download(batch.input_file_id, path)
        with path.open("rb") as lines:
            return [
                Result(
                    orjson.loads(raw)["custom_id"],
                    batch.id,
                    "error",
                    error_code=QUEUE_FULL,
                    error_message=batch.errors.data[0].message,
                )
                for raw in lines
                if raw.strip()
            ]

    def _resubmit(
        self,
        context: Any,
        hook: OpenAIBatchHook,
        staging: Any,
        scratch: Path,
        batches: list[Any],
        retry: set[str],
        waits: int,
    ) -> Any:
        import openai

        from batchkit.results import request_lines
        from openai_batch.triggers import OpenAIBatchStatusTrigger

        batch_ids = [b.id for b in batches]
        attempt = len(batch_ids) + 1
        key = batch_key(context, self.batch_file["sha256"], attempt)
        batch = hook.find_batch(key)
        if batch is None:
            retry_file = scratch / f"retry-{self.batch_file['index']:05d}-{attempt}.jsonl"
            with retry_file.open("wb") as out:
                out.writelines(request_lines(self.batch_file["path"], retry))
            staged = staging.publish(retry_file, "inputs", retry_file.name)
            first = batches[0]
            metadata = {**(first.metadata or {}), METADATA_KEY: key, "attempt": str(attempt)}
            try:
                batch = hook.submit_file(
                    key, staged, endpoint=first.endpoint, completion_window="24h", metadata=metadata
                )
            except openai.RateLimitError as exc:
                reason = f"resubmission refused: {exc.message}"
                return wait_then_retry(self, waits, "collect", {"batch_ids": batch_ids, "waited": True}, reason)
        if batch.status in TERMINAL:  # adopted from an earlier try and already done: no need to wait
            self.log.info("retry batch %s of an earlier try is already %s", batch.id, batch.status)
            return self.collect(context, [*batch_ids, batch.id])
        self.log.warning(
            "resubmitting %d retryable line(s) as batch %s (attempt %d of %d)",
            len(retry),
            batch.id,
            attempt,
            self.max_attempts,
        )
        timeout = self.completion_window + timedelta(hours=1)
        self.defer(
            trigger=OpenAIBatchStatusTrigger(
                batch_id=batch.id,
                conn_id=self.conn_id,
                poll_interval=self.poll_interval,
                deadline=time.time() + timeout.total_seconds(),
            ),
            method_name="collect",
            kwargs={"batch_ids": [*batch_ids, batch.id]},
            timeout=timeout + timedelta(minutes=5),
        )


class LoadToWarehouseOperator(BaseOperator):
    """Load the run's merged result files into a warehouse table, replacing the partition's rows atomically.

    The target is DuckDB (``database``, a file path) unless ``warehouse_conn_id`` names an Airflow
    ``postgres`` connection, in which case rows are streamed to PostgreSQL with binary COPY.

    :param results: the collect step's outputs (paths, local or ``s3://`` through ``storage_conn_id``, and counts).
    :param database: DuckDB database file (when no connection is given).
    :param table: target table (``table`` or ``schema.table``; validated and quoted).
    :param warehouse_conn_id: optional ``postgres`` connection id.
    """

    template_fields = ("results", "database", "table", "warehouse_conn_id", "max_error_rate")

    def __init__(
        self,
        *,
        results: list[dict[str, Any]],
        database: str,
        table: str,
        warehouse_conn_id: str = "",
        max_error_rate: float = 1.0,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.results, self.database, self.table, self.warehouse_conn_id = results, database, table, warehouse_conn_id
        self.max_error_rate, self.storage_conn_id = max_error_rate, storage_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from openai_batch.staging import connect_storage

        partition = partition_key(context)
        given = self.results or []
        # xcom_pull of a mapped task gives a list, except when it mapped to a single file: then the value itself
        results = [r for r in ([given] if isinstance(given, dict) else given) if r]
        for url in {r["path"].partition("://")[0]: r["path"] for r in results}.values():  # one per protocol
            connect_storage(url, self.storage_conn_id)
        try:
            target, rows = self._load([r["path"] for r in results], partition, context["run_id"])
        except BatchkitError as exc:
            raise AirflowFailException(str(exc)) from None
        report = self._reconcile(results, rows)
        self.log.info(
            "loaded into %s table %s for partition %s; reconciliation: %s",
            target,
            self.table,
            partition,
            ", ".join(f"{k} {v}" for k, v in report.items()),
        )
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = {"partition": partition, "rows": rows, "table": self.table}
        if report["loaded"] != report["input_rows"]:
            raise AirflowException(f"loaded {report['loaded']} rows but the partition has {report['input_rows']}")
        rate = report["results_error"] / max(1, report["loaded"])
        if rate > float(self.max_error_rate):
            raise AirflowFailException(
                f"{report['results_error']} of {report['loaded']} rows ({rate:.1%}) ended in "
                f"error, over max_error_rate {float(self.max_error_rate):.1%}; the rows are "
                "loaded with their error codes for inspection"
            )
        return {"warehouse": target, "table": self.table, "partition": partition, **report}

    @staticmethod
    def _reconcile(results: list[dict[str, Any]], loaded: int) -> dict[str, int]:
        """Input rows (from the split manifest) against what was submitted, answered and loaded."""
        from batchkit.manifest import Manifest

        manifests = {r["manifest"] for r in results if r.get("manifest")}
        input_rows = sum(Manifest.load(m).totals["rows_read"] for m in manifests) if manifests else loaded
        return {
            "input_rows": input_rows,
            "requests_submitted": sum(r.get("requests", 0) for r in results),
            "resubmitted": sum(r.get("resubmitted", 0) for r in results),
            "results_ok": sum(r["ok"] for r in results),
            "results_error": sum(r["errors"] for r in results),
            "loaded": loaded,
        }

    def _load(self, paths: list[str], partition: str, run_id: str) -> tuple[str, int]:
        if not self.warehouse_conn_id:
            from batchkit.warehouse.duckdb_loader import load_duckdb

            return f"duckdb {self.database}", load_duckdb(self.database, self.table, paths, partition, run_id)
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self.warehouse_conn_id)
        if conn.conn_type == "redshift":
            return self._load_redshift(conn, paths, partition, run_id)
        if conn.conn_type not in ("postgres", "postgresql"):
            raise AirflowFailException(
                f"connection {self.warehouse_conn_id!r} is of type {conn.conn_type!r}; "
                "use a postgres or redshift connection, or leave it empty for DuckDB"
            )
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from batchkit.warehouse.postgres_loader import load_postgres

        uri = PostgresHook(postgres_conn_id=self.warehouse_conn_id).get_uri()
        uri = "postgresql://" + uri.split("://", 1)[1]  # ADBC takes libpq URIs (no SQLAlchemy driver suffix)
        return f"postgres {conn.host}/{conn.schema}", load_postgres(uri, self.table, paths, partition, run_id)

    def _load_redshift(self, conn: Any, paths: list[str], partition: str, run_id: str) -> tuple[str, int]:
        """Stage to S3 with the connection's ``aws_conn_id`` and COPY with its ``iam_role`` (from its extra)."""
        import psycopg
        import s3fs
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from batchkit.warehouse.redshift_loader import load_redshift

        extra = conn.extra_dejson
        missing = [key for key in ("s3_staging", "iam_role") if not extra.get(key)]
        if missing:
            raise AirflowFailException(
                f"redshift connection {self.warehouse_conn_id!r} needs {', '.join(missing)} in its extra "
                "(s3_staging: s3://bucket/prefix, iam_role: the ARN Redshift's COPY assumes)"
            )
        s3 = S3Hook(aws_conn_id=extra.get("aws_conn_id", "aws_default"))
        credentials = s3.get_credentials()
        endpoint = s3.conn_config.endpoint_url
        fs = s3fs.S3FileSystem(
            key=credentials.access_key,
            secret=credentials.secret_key,
            token=credentials.token,
            client_kwargs={"endpoint_url": endpoint} if endpoint else {},
        )
        stage = f"{extra['s3_staging'].rstrip('/')}/{self.table}/{partition}/{run_id}"

        def connect() -> Any:
            return psycopg.connect(
                host=conn.host, port=conn.port or 5439, user=conn.login, password=conn.password, dbname=conn.schema
            )

        rows = load_redshift(connect, self.table, paths, partition, run_id, fs, stage, extra["iam_role"])
        return f"redshift {conn.host}/{conn.schema}", rows


class PruneStagingOperator(BaseOperator):
    """Delete the staging areas of this DAG's runs whose newest file is older than ``retention``.

    Only ``<staging_root>/<dag_id>/<partition>/<run_id>`` directories are candidates; the current run's area and
    any directory holding or inside the source (everything before ``{partition}`` in ``source``) are kept.

    :returns: the number of run areas deleted.
    """

    template_fields = ("staging_root", "source")

    def __init__(
        self,
        *,
        staging_root: str,
        retention: timedelta,
        source: str = "",
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.staging_root, self.retention, self.source = staging_root, retention, source
        self.storage_conn_id = storage_conn_id

    def execute(self, context: Any) -> int:
        from batchkit.storage import prune
        from openai_batch.staging import RunStaging, connect_storage, plain_url

        root = plain_url(connect_storage(self.staging_root, self.storage_conn_id) / context["dag"].dag_id)
        keep = [self.source.split("{partition}")[0], RunStaging(self.staging_root, context, self.storage_conn_id).url()]
        deleted = prune(root, self.retention, protect=keep)
        for path in deleted:
            self.log.info("deleted staging area %s (older than %s)", path, self.retention)
        self.log.info("%d staging area(s) under %s older than %s deleted", len(deleted), root, self.retention)
        return len(deleted)
