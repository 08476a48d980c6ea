"""Step 1: split the run's partition into batch files, leaving out what the ledger already answered."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from batchkit.cost.pricing import Estimate
from batchkit.split.manifest import MANIFEST_NAME, ROWS_NAME
from batchkit.split.split_config import SplitConfig
from openai_batch.context import TaskRun
from openai_batch.errors import airflow_errors
from openai_batch.operators.common import as_bool
from openai_batch.operators.split_checks import check_budget, check_model, check_request
from openai_batch.operators.split_options import OPTIONS, config_value, operator_default, with_options


class SplitPartitionOperator(BaseOperator):
    """Split the run's partition into batch input files in the run's staging directory.

    Checks the model exists before anything else, so a typo fails the run before anything is submitted. The
    connection's batch vendor (``vendors``) sets the limits the files are cut at and checks one request as it would
    send it (e.g. Anthropic refuses embeddings and body options it has no equivalent for).

    :param model: / ``endpoint``, ``prompt_template`` or ``prompt_column``, ``system_prompt``, ``id_column``,
        ``body_options``, ``max_requests``, ``max_tokens``, ``max_bytes``, ``exact_tokens``, ``prices``...: the
        split options, each a templated keyword declared once on ``batchkit.split.split_config.SplitConfig`` (as
        ``batchkit split``'s flags; ``split_options.OPTIONS``); empty values take the option's default.
    :param source: Parquet file, directory or glob, local or ``s3://``; ``{partition}`` is replaced by the
        partition key, ``{partition:%Y-%m-%d}`` by its time in that format (``context.fill_source``).
    :param staging_root: local directory or ``s3://bucket/prefix`` holding run-scoped staging areas
        (``<root>/<dag_id>/<partition>/<run_id>/inputs`` for this step).
    :param storage_conn_id: the ``aws`` connection for ``s3://`` source and staging (empty: default credentials).
    :param allowed_sources: roots the rendered source must lie under (``None``: any; see ``policy``).
    :param conn_id: the batch vendor's connection (templated); ``allowed_api_conns`` the ones it may name.
    :param warehouse_conn_id: / ``table`` / ``database``: where the load will write, checked before anything is
        sent (``allowed_warehouse_conns`` / ``allowed_tables``, the connection's existence and type, and that the
        merged rows fit the table as it is); ``table=None`` skips the checks.
    :param max_requests: requests per batch file (empty: the vendor's limit: OpenAI 50,000, Azure and Anthropic
        100,000); more than the vendor allows fails the split.
    :param dry_run: split and report only; return no files, so nothing is submitted.
    :param input_columns: (``SplitConfig.keep_columns``) input columns kept beside the results in the table
        (empty: all); they are staged with the run (``inputs/rows.parquet``), so later steps never re-read a source
        that changed meanwhile.
    :param output_schema: structured outputs: a JSON Schema object every answer must follow, a Pydantic model or
        its dotted path; its top-level properties become typed columns (``batchkit.structured``).
    :param max_cost_usd: budget cap: a split whose estimate is above it fails before anything is submitted.
    :param reuse_results: leave out requests the partition's ledger already answered (same custom_id and same
        request content) in any earlier run; off: ask everything again.
    :param pipeline_id: a pipeline in a task group: its own staging area, ledger and batch keys (empty: top level).
    :returns: one small descriptor per batch file (index, path, requests, bytes, sha256, manifest, partition).
        Also pushes XCom ``split``: the staged rows and manifest, the dry_run flag, the cost estimate and the
        report's address, for the load, report and notifications.
    """

    template_fields = (
        "source",
        "staging_root",
        *OPTIONS,
        "dry_run",
        "reuse_results",
        "max_cost_usd",
        "warehouse_conn_id",
        "table",
        "database",
        "conn_id",
    )

    def __init__(
        self,
        *,
        source: str,
        staging_root: str,
        dry_run: bool = False,
        reuse_results: bool = True,
        max_cost_usd: float | None = None,
        conn_id: str = "openai_default",
        storage_conn_id: str | None = None,
        check_model: bool = True,
        allowed_sources: list[str] | None = None,
        allowed_api_conns: list[str] | None = None,
        warehouse_conn_id: str | None = None,
        table: str | None = None,
        database: str = "",
        allowed_warehouse_conns: list[str] | None = None,
        allowed_tables: list[str] | None = None,
        pipeline_id: str = "",
        **kwargs: Any,
    ) -> None:
        options = {name: kwargs.pop(name, operator_default(each)) for name, (each, _) in OPTIONS.items()}
        super().__init__(**kwargs)
        for name, value in options.items():
            setattr(self, name, value)
        self.warehouse_conn_id, self.table, self.database = warehouse_conn_id, table, database
        self.allowed_warehouse_conns, self.allowed_tables = allowed_warehouse_conns, allowed_tables
        self.allowed_sources, self.max_cost_usd, self.pipeline_id = allowed_sources, max_cost_usd, pipeline_id
        self.storage_conn_id, self.reuse_results, self.dry_run = storage_conn_id, reuse_results, dry_run
        self.source, self.staging_root, self.conn_id, self.check_model = source, staging_root, conn_id, check_model
        self.allowed_api_conns = allowed_api_conns

    __init__.__signature__ = with_options(__init__)  # type: ignore[attr-defined]  # read by Airflow: see with_options

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from batchkit.results.merge import merged_schema
        from batchkit.split.source import open_parquet
        from batchkit.split.splitter import split
        from openai_batch.policy import check_api_conn, check_source
        from openai_batch.staging import RunStaging, connect_storage
        from openai_batch.vendors import for_connection

        run = TaskRun.of(context, self.pipeline_id)
        partition = run.partition
        source = run.source(self.source)
        check_source(source, self.allowed_sources)
        check_api_conn(self.conn_id, self.allowed_api_conns)
        self._check_target()
        connect_storage(source, self.storage_conn_id)
        staging = RunStaging(self.staging_root, run, self.storage_conn_id)
        vendor = for_connection(self.conn_id)
        config = self._config(vendor)
        check_request(vendor, config, self.conn_id)
        if self.check_model:
            check_model(vendor, self.model)
        reuse = as_bool(self.reuse_results)
        with staging.scratch() as scratch, airflow_errors(f"cannot split partition {partition} ({source})"):
            answered = staging.ledger().answered() if reuse else None
            rows_url = staging.url("inputs", ROWS_NAME)  # streamed there: never whole on local disk
            publish = self._publisher(staging)
            manifest = split(source, scratch / "split", config, self._progress, answered, publish, rows_url)
            paths = [staging.url("inputs", f.path) for f in manifest.files]
            rows_schema = open_parquet(rows_url).schema_arrow.remove_metadata()
            parameters = manifest.parameters
            merged = merged_schema(rows_schema, parameters.get("output_schema"), parameters["endpoint"])
            manifest_url = staging.publish(scratch / "split" / MANIFEST_NAME, "inputs", MANIFEST_NAME)
        totals = manifest.totals
        self.log.info(
            "partition %s: %d rows -> %d requests to send in %d file(s), %.1f MB, ~%d tokens; %d row(s) skipped "
            "(%s); manifest %s",
            partition,
            totals["rows_read"],
            totals["requests"],
            totals["files"],
            totals["bytes"] / 1e6,
            totals["estimated_tokens"],
            totals["rows_skipped"],
            manifest.skipped.reasons or manifest.skipped.reason,
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
        cost = Estimate(**manifest.estimate)
        self.log.info("estimated cost: %s", cost.describe())
        context["ti"].xcom_push(
            key="split",
            value={
                "rows": rows_url,
                "manifest": manifest_url,
                "partition": partition,
                "dry_run": dry_run,
                "estimate": manifest.estimate,
                "report": staging.report_url(),  # written by the report step, whatever happens
            },
        )
        if dry_run:
            self.log.info("DRY RUN: nothing is submitted; the estimate above is what this run would cost")
            return []
        check_budget(cost, self.max_cost_usd, self.log)
        self._check_table(merged)
        # a full re-ask (no reuse) adopts no other run's batches
        return batch_files(manifest, paths, manifest_url, partition, "" if reuse else run.run_id)

    def _publisher(self, staging: Any) -> Any:
        """Publish each batch file as soon as it is complete and drop the local copy (the manifest comes last)."""

        def publish(path: Any) -> None:
            url = staging.publish(path, "inputs", path.name)
            path.unlink(missing_ok=True)
            self.log.info("published %s", url)

        return publish

    def _config(self, vendor: Any) -> Any:
        """The core's split parameters, cut at the vendor's limits."""
        from airflow.sdk.configuration import conf

        limits = vendor.limits
        if self.max_requests not in (None, "") and int(self.max_requests) > limits.max_requests:
            raise AirflowFailException(
                f"max_requests_per_file is {int(self.max_requests):,} but {vendor.title} takes at most "
                f"{limits.max_requests:,} requests per batch; nothing was submitted"
            )
        defaults = {"max_requests": limits.max_requests, "max_bytes": limits.max_bytes}  # when left empty
        with airflow_errors("invalid split parameters"):
            values = {
                each.name: config_value(getattr(self, name), each, spec, defaults)
                for name, (each, spec) in OPTIONS.items()
            }
            return SplitConfig(
                **values,
                request_limit=limits.max_requests,
                byte_limit=limits.max_bytes,
                vendor=vendor.price_vendor,
                max_files=conf.getint("core", "max_map_length"),  # the mapped tasks cannot expand past it
            )

    def _check_target(self) -> None:
        """The load's refusals that do not depend on the answers, before anything is sent (and paid for): the
        allow-lists, and that the warehouse connection exists and is of a supported type. The load checks again."""
        from openai_batch.policy import check_warehouse
        from openai_batch.warehouses import warehouse_connection

        if self.table is None:  # a split used without a load in view
            return
        check_warehouse(self.warehouse_conn_id or "", self.table, self.allowed_warehouse_conns, self.allowed_tables)
        if self.warehouse_conn_id:
            warehouse_connection(self.warehouse_conn_id)

    def _check_table(self, merged: Any) -> None:
        """Refuse a table the merged rows could not be loaded into, as the load would (an unreachable one: later)."""
        from batchkit.errors import WarehouseUnavailable
        from openai_batch.warehouses import check_table

        if self.table is None:
            return
        with airflow_errors(f"cannot load partition results into {self.table}"):
            try:
                check_table(self.warehouse_conn_id, self.database, self.table, merged)
            except WarehouseUnavailable as exc:
                self.log.warning("the table could not be checked before submitting (the load checks it): %s", exc)

    def _progress(self, rows: int, files: int) -> None:
        if rows and rows % 500_000 < 4096:
            self.log.info("split progress: %d rows read, %d file(s) started", rows, files)


def batch_files(
    manifest: Any, paths: list[str], manifest_url: str, partition: str, key_scope: str = ""
) -> list[dict[str, Any]]:
    """The split's XCom: one descriptor per batch file (at ``paths``), each a mapped ``batch`` group instance."""
    return [
        {
            "index": i,
            "path": path,
            "requests": f.requests,
            "bytes": f.bytes,
            "sha256": f.sha256,
            "manifest": manifest_url,
            "partition": partition,
            "key_scope": key_scope,
        }
        for i, (f, path) in enumerate(zip(manifest.files, paths, strict=True))
    ]
