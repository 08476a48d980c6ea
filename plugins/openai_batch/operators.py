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
from batchkit.manifest import MANIFEST_NAME, ROWS_NAME
from openai_batch.context import actor, batch_key, partition_key
from openai_batch.errors import airflow_errors
from openai_batch.statuses import METADATA_KEY, QUEUE_FULL, TERMINAL, queue_full

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
    :param input_columns: input columns kept beside the results in the table (empty: all); they are staged with
        the run (``inputs/rows.parquet``), so later steps never re-read a source that changed meanwhile.
    :param reuse_results: leave out requests the partition's ledger already answered (same custom_id and same
        request content) in any earlier run; off: ask everything again.
    :returns: one small descriptor per batch file (index, path, requests, bytes, sha256, manifest, partition).
        Also pushes XCom ``split``: the staged rows and manifest and the dry_run flag, for the load step.
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
        "input_columns",
        "reuse_results",
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
        input_columns: list[str] | None = None,
        reuse_results: bool = True,
        conn_id: str = "openai_default",
        storage_conn_id: str | None = None,
        check_model: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.storage_conn_id, self.input_columns, self.reuse_results = storage_conn_id, input_columns, reuse_results
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
        reuse = as_bool(self.reuse_results)
        with staging.scratch() as scratch, airflow_errors(f"cannot split partition {partition} ({source})"):
            answered = staging.ledger().answered() if reuse else None
            manifest = split(source, scratch / "split", self._config(), self._progress, answered)
            paths = [staging.publish(scratch / "split" / f.path, "inputs", f.path) for f in manifest.files]
            rows_url = staging.publish(scratch / "split" / ROWS_NAME, "inputs", ROWS_NAME)
            manifest_url = staging.publish(scratch / "split" / MANIFEST_NAME, "inputs", MANIFEST_NAME)
        totals = manifest.totals
        self.log.info(
            "partition %s: %d rows -> %d requests to send in %d file(s), %.1f MB, ~%d tokens; %d row(s) skipped "
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
        self.log.info(
            "requests: %d new, %d changed, %d unanswered before (sent again), %d reused from the ledger%s",
            totals["new"],
            totals["changed"],
            totals["retried"],
            totals["reused"],
            "" if reuse else " (reuse_results is off: everything is asked again)",
        )
        dry_run = as_bool(self.dry_run)
        context["ti"].xcom_push(
            key="split", value={"rows": rows_url, "manifest": manifest_url, "partition": partition, "dry_run": dry_run}
        )
        if dry_run:
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
                "key_scope": "" if reuse else context["run_id"],  # a full re-ask adopts no other run's batches
            }
            for i, (f, path) in enumerate(zip(manifest.files, paths, strict=True))
        ]

    def _config(self) -> Any:
        from airflow.sdk.configuration import conf

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
                keep_columns=as_list(self.input_columns) or None,
                max_files=conf.getint("core", "max_map_length"),  # the mapped tasks cannot expand past it
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
    """Upload one batch file and create its batch, once per file content and partition.

    The batch's key (DAG, partition, file digest, attempt) is claimed in the partition's ledger before the
    batch is created (``claims.submit_once``): a retry, a clear or an overlapping run of the same partition
    adopts the batch the claim names, whatever its status (collect decides what to resubmit), so no file is
    ever paid for twice.

    :param staging_root: as for ``SplitPartitionOperator`` (the ledger lives there).

    :param batch_file: a descriptor from ``SplitPartitionOperator`` (templated); its file is streamed from
        staging (local or ``s3://`` through ``storage_conn_id``) to the Files API.
    :param endpoint: Batch API endpoint; ``completion_window``, ``metadata`` and ``output_expires_after``
        are passed to ``batches.create``.
    :returns: the batch id.
    """

    template_fields = ("batch_file", "staging_root", "endpoint", "metadata")

    def __init__(
        self,
        *,
        batch_file: dict[str, Any],
        staging_root: str,
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
        self.batch_file, self.endpoint, self.conn_id, self.staging_root = batch_file, endpoint, conn_id, staging_root
        self.storage_conn_id, self.queue_wait, self.max_queue_waits = storage_conn_id, queue_wait, max_queue_waits
        self.completion_window, self.metadata, self.output_expires_after = (
            completion_window,
            metadata,
            output_expires_after,
        )

    def execute(self, context: Any, waits: int = 0, event: Any = None) -> str:
        import openai

        from openai_batch.claims import submit_once
        from openai_batch.hooks import OpenAIBatchHook
        from openai_batch.staging import RunStaging, connect_storage

        hook = OpenAIBatchHook(conn_id=self.conn_id)
        sha, partition, ti = self.batch_file["sha256"], self.batch_file["partition"], context["ti"]
        state = context["task_state_store"]
        saved = state.get("batch_id")
        if saved:  # recorded by an earlier try (also by versions before the ledger): adopt it if it is this file's
            batch = hook.get_batch(saved)
            if (batch.metadata or {}).get("file_sha256") == sha[:32]:
                self.log.info("adopting batch %s (%s) recorded by an earlier try", batch.id, batch.status)
                return batch.id
            self.log.warning("batch %s of an earlier try was made from another file; not adopting it", batch.id)
        key = batch_key(ti.dag_id, partition, sha, 1, self.batch_file.get("key_scope", ""))
        metadata = {
            **(self.metadata or {}),
            "airflow_dag_id": ti.dag_id,
            "airflow_run_id": ti.run_id[:512],
            "airflow_task": f"{ti.task_id}[{ti.map_index}]",
            "partition": partition,
            "file_sha256": sha[:32],
            METADATA_KEY: key,
        }
        extra = {"output_expires_after": self.output_expires_after} if self.output_expires_after else {}
        connect_storage(self.batch_file["path"], self.storage_conn_id)
        ledger = RunStaging(self.staging_root, context, self.storage_conn_id).ledger()
        try:
            with airflow_errors(f"submitting {self.batch_file['path']}"):
                batch = submit_once(
                    hook,
                    ledger,
                    key,
                    actor(context),
                    sha,
                    self.batch_file["path"],
                    self.log,
                    endpoint=self.endpoint,
                    completion_window=self.completion_window,
                    metadata=metadata,
                    **extra,
                )
        except openai.RateLimitError as exc:
            wait_then_retry(self, waits, "execute", {}, f"batch creation refused: {exc.message}")
        state.set("batch_id", batch.id)
        self.log.info("batch %s (%s) holds %d requests", batch.id, batch.status, self.batch_file["requests"])
        return batch.id


class CollectResultsOperator(BaseOperator):
    """Record a batch file's answers in the partition's ledger, resubmitting what a later attempt may answer.

    A loop over attempts: each attempt's batch is adopted from the ledger whichever run or try created it; while
    it runs the task defers to the triggerer (deadline: the batch's creation + completion window + 1 h); once
    terminal, its output and error files are downloaded and recorded once (``_ledger/results/<batch>.parquet``;
    the raw files stay in the run's ``outputs/`` and ``errors/``); retryable lines (429, 5xx, expired) go into
    the next attempt, up to ``max_attempts`` batches in all. The load step merges the answers onto the rows.

    :returns: ``{"rows", "ok", "errors", "batch_ids", "manifest", "requests", "resubmitted"}`` for this file.
    """

    template_fields = ("batch_file", "batch_id", "staging_root", "max_attempts")

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_file, self.batch_id, self.staging_root, self.conn_id = batch_file, batch_id, staging_root, conn_id
        self.max_attempts, self.poll_interval, self.completion_window = max_attempts, poll_interval, completion_window
        self.queue_wait, self.storage_conn_id, self.max_queue_waits = queue_wait, storage_conn_id, max_queue_waits

    def execute(self, context: Any) -> dict[str, Any]:
        return self.collect(context)

    def collect(
        self, context: Any, event: dict[str, Any] | None = None, waited: bool = False, waits: int = 0, **_: Any
    ) -> dict[str, Any]:
        """Resumed here after every deferral; the attempt chain is read back from the ledger each time."""
        from batchkit.ledger import is_retryable
        from openai_batch.hooks import OpenAIBatchHook
        from openai_batch.staging import RunStaging, connect_storage

        hook = OpenAIBatchHook(conn_id=self.conn_id)
        connect_storage(self.batch_file["path"], self.storage_conn_id)
        staging = RunStaging(self.staging_root, context, self.storage_conn_id)
        ledger = staging.ledger()
        chain = self._chain(context, hook, ledger)
        if isinstance(event, dict) and event.get("status") == "timeout":
            hook.cancel_batch(chain[-1].id)
            raise AirflowException(f"retry batch {chain[-1].id} did not finish in time; cancelled it")
        with airflow_errors(f"collecting the results of {self.batch_file['path']}"):
            while True:
                if chain[-1].status not in TERMINAL:
                    self._defer(chain[-1])
                for attempt, batch in enumerate(chain, start=1):
                    if not ledger.has_results(batch.id):
                        self._record(hook, staging, ledger, batch, attempt)
                latest, resubmitted = self._latest(ledger, chain)
                retry = {custom_id for custom_id, result in latest.items() if is_retryable(*result)}
                if not retry or len(chain) >= int(self.max_attempts):
                    break
                if not waited and queue_full(chain[-1].errors):
                    reason = f"batch {chain[-1].id} was refused for the enqueued-token limit"
                    return wait_then_retry(self, waits, "collect", {"waited": True}, reason)
                chain.append(self._resubmit(context, hook, staging, ledger, chain, retry, waits))
                waited = False
        ok = sum(1 for status, _, _ in latest.values() if status == "ok")
        batch_ids = [b.id for b in chain]
        self.log.info(
            "recorded %d results (%d ok, %d error) of batch(es) %s in the ledger %s",
            len(latest),
            ok,
            len(latest) - ok,
            ", ".join(batch_ids),
            ledger.root,
        )
        if retry:
            self.log.warning(
                "%d line(s) still unanswered after %d attempts; they load with their error code and a clear or "
                "rerun of the partition sends them again",
                len(retry),
                len(chain),
            )
        return {
            "rows": len(latest),
            "ok": ok,
            "errors": len(latest) - ok,
            "batch_ids": batch_ids,
            "manifest": self.batch_file["manifest"],
            "requests": self.batch_file["requests"],
            "resubmitted": resubmitted,
        }

    def _key(self, context: Any, attempt: int) -> str:
        scope = self.batch_file.get("key_scope", "")
        return batch_key(context["ti"].dag_id, self.batch_file["partition"], self.batch_file["sha256"], attempt, scope)

    def _chain(self, context: Any, hook: OpenAIBatchHook, ledger: Any) -> list[Any]:
        """The file's batches so far: the submitted one, then each resubmission the ledger's claims name."""
        chain = [hook.get_batch(self.batch_id)]
        while (claim := ledger.claim_of(self._key(context, len(chain) + 1))) and claim.batch_id:
            chain.append(hook.get_batch(claim.batch_id))
        return chain

    def _defer(self, batch: Any) -> None:
        from openai_batch.triggers import OpenAIBatchStatusTrigger

        deadline = batch.created_at + (self.completion_window + timedelta(hours=1)).total_seconds()
        self.log.info("batch %s is %s; waiting on the triggerer", batch.id, batch.status)
        self.defer(
            trigger=OpenAIBatchStatusTrigger(
                batch_id=batch.id, conn_id=self.conn_id, poll_interval=self.poll_interval, deadline=deadline
            ),
            method_name="collect",
            timeout=timedelta(seconds=max(60.0, deadline - time.time()) + 300),
        )

    def _record(self, hook: OpenAIBatchHook, staging: Any, ledger: Any, batch: Any, attempt: int) -> None:
        """Download a terminal batch's files once and record its results in the ledger."""
        from batchkit.results import fingerprints, from_results, result_batches, write_results

        if batch.status == "failed" and not queue_full(batch.errors):
            errors = "; ".join(f"{e.code}: {e.message}" for e in (batch.errors.data if batch.errors else []))
            raise AirflowFailException(f"batch {batch.id} failed: {errors}")
        name = f"{self.batch_file['index']:05d}/attempt-{attempt}.jsonl"
        with staging.scratch() as scratch:
            downloaded = []
            if batch.status == "failed":  # refused for the queue limit: nothing ran, every line is unanswered
                source = from_results(self._refused_requests(hook, batch, scratch / f"{batch.id}-input.jsonl"))
            else:
                downloaded = [
                    (kind, self._download(hook, file_id, batch.id, scratch / kind / name))
                    for kind, file_id in (("outputs", batch.output_file_id), ("errors", batch.error_file_id))
                    if file_id
                ]

                def source(per_line: bool) -> Any:
                    return result_batches([path for _, path in downloaded], batch.id, per_line)

            counts = batch.request_counts
            expected = counts.total if batch.status == "completed" and counts else None
            local = scratch / f"{batch.id}.parquet"
            if not hasattr(self, "_prints"):
                self._prints = fingerprints(self.batch_file["path"])
            written = write_results(source, self._prints, attempt, local, expected)
            url = ledger.record_results(batch.id, local)
            for kind, path in downloaded:
                staging.publish(path, kind, name)
        self.log.info("recorded %d result(s) of batch %s (%s) in %s", written, batch.id, batch.status, url)

    def _download(self, hook: OpenAIBatchHook, file_id: str, batch_id: str, path: Path) -> Path:
        size = hook.download(file_id, path)
        self.log.info("downloaded file %s of %s (%d bytes)", file_id, batch_id, size)
        return path

    @staticmethod
    def _latest(ledger: Any, chain: list[Any]) -> tuple[dict[str, tuple[str, int | None, str | None]], int]:
        """Each request's best answer over the attempts (ok, then final errors, then the latest attempt), and
        how many results came from resubmissions."""
        table = ledger.read_results(
            [b.id for b in chain], ["custom_id", "status", "http_status", "error_code", "final", "attempts"]
        )
        best: dict[str, tuple[tuple[int, int], tuple[str, int | None, str | None]]] = {}
        columns = [table.column(c).to_pylist() for c in table.column_names]
        for custom_id, status, http_status, code, final, attempts in zip(*columns):
            rank = (0 if status == "ok" else 1 if final else 2, -attempts)
            if custom_id not in best or rank < best[custom_id][0]:
                best[custom_id] = (rank, (status, http_status, code))
        resubmitted = sum(1 for attempts in columns[5] if attempts > 1)
        return {custom_id: result for custom_id, (_, result) in best.items()}, resubmitted

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
        ledger: Any,
        chain: list[Any],
        retry: set[str],
        waits: int,
    ) -> Any:
        import openai

        from batchkit.results import request_lines
        from openai_batch.claims import submit_once

        attempt = len(chain) + 1
        key = self._key(context, attempt)
        with staging.scratch() as scratch:
            retry_file = scratch / f"retry-{self.batch_file['index']:05d}-{attempt}.jsonl"
            with retry_file.open("wb") as out:
                out.writelines(request_lines(self.batch_file["path"], retry))
            staged = staging.publish(retry_file, "inputs", retry_file.name)
        first = chain[0]
        metadata = {**(first.metadata or {}), METADATA_KEY: key, "attempt": str(attempt)}
        try:
            batch = submit_once(
                hook,
                ledger,
                key,
                actor(context),
                self.batch_file["sha256"],
                staged,
                self.log,
                endpoint=first.endpoint,
                completion_window="24h",
                metadata=metadata,
            )
        except openai.RateLimitError as exc:
            return wait_then_retry(self, waits, "collect", {"waited": True}, f"resubmission refused: {exc.message}")
        self.log.warning(
            "resubmitting %d retryable line(s) as batch %s (attempt %d of %s)",
            len(retry),
            batch.id,
            attempt,
            self.max_attempts,
        )
        return batch


class LoadToWarehouseOperator(BaseOperator):
    """Merge the partition's answers from the ledger onto its rows, check them, then replace the partition.

    The rows are the ones the split staged (``inputs/rows.parquet``), each with the best answer the ledger holds
    for its request, whichever run paid for it; the merged file is kept in the run's ``merged/result.parquet``.
    Reconciliation and ``max_error_rate`` are checked **before** the table is touched: a run that fails them
    leaves the table exactly as it was and says where its merged results are.

    The target is DuckDB (``database``, a file path) unless ``warehouse_conn_id`` names an Airflow ``postgres``
    or ``redshift`` connection. Runs when the mapped collects were skipped too (nothing left to send).

    :param results: the collect steps' outputs (counts).
    :param split: the split step's XCom ``split`` (staged rows, manifest, dry_run).
    :param staging_root: as for the other steps (the ledger lives there).
    :param database: DuckDB database file (when no connection is given).
    :param table: target table (``table`` or ``schema.table``; validated and quoted).
    :param warehouse_conn_id: optional ``postgres`` or ``redshift`` connection id.
    """

    template_fields = ("results", "split", "staging_root", "database", "table", "warehouse_conn_id", "max_error_rate")

    def __init__(
        self,
        *,
        results: list[dict[str, Any]],
        split: dict[str, Any],
        staging_root: str,
        database: str,
        table: str,
        warehouse_conn_id: str = "",
        max_error_rate: float = 1.0,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "none_failed")
        super().__init__(**kwargs)
        self.results, self.database, self.table, self.warehouse_conn_id = results, database, table, warehouse_conn_id
        self.max_error_rate, self.storage_conn_id = max_error_rate, storage_conn_id
        self.split, self.staging_root = split, staging_root

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from batchkit.merge import merge_partition
        from openai_batch.staging import RunStaging, connect_storage

        split = self.split if isinstance(self.split, dict) else {}
        if not split.get("rows"):
            raise AirflowFailException("the split step recorded no staged rows (XCom 'split'); clear the run")
        if as_bool(split.get("dry_run")):
            raise AirflowSkipException("dry run: nothing was submitted, so nothing is loaded")
        partition = partition_key(context)
        connect_storage(split["rows"], self.storage_conn_id)
        staging = RunStaging(self.staging_root, context, self.storage_conn_id)
        with staging.scratch() as scratch, airflow_errors(f"merging the answers of partition {partition}"):
            counts = merge_partition(split["rows"], staging.ledger().result_files(), scratch / "result.parquet")
            merged = staging.publish(scratch / "result.parquet", "merged", "result.parquet")
        given = self.results or []
        # xcom_pull of a mapped task gives a list, except when it mapped to a single file: then the value itself
        results = [r for r in ([given] if isinstance(given, dict) else given) if r]
        report = self._reconcile(split["manifest"], results, counts)
        self.log.info("partition %s: %s", partition, ", ".join(f"{k} {v}" for k, v in report.items()))
        self._guard(counts, merged, partition)
        try:
            target, rows = self._load([merged], partition, context["run_id"])
        except BatchkitError as exc:
            raise AirflowFailException(str(exc)) from None
        self.log.info("loaded %d rows into %s table %s for partition %s", rows, target, self.table, partition)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = {"partition": partition, "rows": rows, "table": self.table}
        if rows != counts["rows"]:
            raise AirflowException(f"loaded {rows} rows but the partition has {counts['rows']}")
        return {"warehouse": target, "table": self.table, "partition": partition, "merged": merged, **report}

    def _guard(self, counts: dict[str, int], merged: str, partition: str) -> None:
        """Refuse to replace the partition with incomplete or too faulty results; the table stays as it was."""
        kept = f"the table was left unchanged; the merged results are kept at {merged}"
        if counts["unanswered"]:
            raise AirflowException(
                f"{counts['unanswered']} request(s) of partition {partition} have no answer in the ledger; {kept}"
            )
        rate = counts["errors"] / max(1, counts["rows"])
        if rate > float(self.max_error_rate):
            raise AirflowFailException(
                f"{counts['errors']} of {counts['rows']} rows ({rate:.1%}) ended in error, over max_error_rate "
                f"{float(self.max_error_rate):.1%}: {kept}. To load them anyway: `batchkit load {merged} --table "
                f"{self.table} --partition {partition}` (see the README), or run the partition again (only the "
                "unanswered requests are sent) with a higher max_error_rate"
            )

    @staticmethod
    def _reconcile(manifest: str, results: list[dict[str, Any]], counts: dict[str, int]) -> dict[str, int]:
        """Input rows (from the split manifest) against what was sent, reused, answered and merged."""
        from batchkit.manifest import Manifest

        totals = Manifest.load(manifest).totals
        return {
            "input_rows": totals["rows_read"],
            "requests_submitted": sum(r.get("requests", 0) for r in results),
            "resubmitted": sum(r.get("resubmitted", 0) for r in results),
            "reused": totals.get("reused", 0),
            "results_ok": counts["ok"],
            "results_error": counts["errors"],
            "merged": counts["rows"],
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
