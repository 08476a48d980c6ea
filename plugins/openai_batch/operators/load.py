"""Step 5: merge the ledger's answers onto the staged rows, check them, then replace the partition."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from batchkit.memory import DEFAULT_TASK_MEMORY_MB
from openai_batch.context import TaskRun
from openai_batch.errors import airflow_errors
from openai_batch.operators.common import as_bool, price_vendor
from openai_batch.warehouses import load_partition, table_uri

NUMBERS_KEY = "numbers"  # the load's XCom of reconciliation, usage and cost, pushed before its checks


class LoadToWarehouseOperator(BaseOperator):
    """Merge the partition's answers from the ledger onto its rows, check them, then replace the partition.

    The rows are the ones the split staged (``inputs/rows.parquet``), each with the best answer the ledger holds
    for its request, whichever run paid for it; the merged file is kept in the run's ``merged/result.parquet``.
    Reconciliation and ``max_error_rate`` are checked **before** the table is touched: a run that fails them
    leaves the table exactly as it was and says where its merged results are. Its numbers (reconciliation,
    usage, cost, report address) are pushed as XCom ``numbers`` before the checks, for the report and the
    notifications of a refused load.

    The target is DuckDB (``database``, a file path) unless ``warehouse_conn_id`` names an Airflow ``postgres``
    or ``redshift`` connection. Runs when the mapped collects were skipped too (nothing left to send).

    :param results: the collect steps' outputs (counts).
    :param split: the split step's XCom ``split`` (staged rows, manifest, dry_run).
    :param staging_root: as for the other steps (the ledger lives there).
    :param database: DuckDB database file (when no connection is given).
    :param table: target table (``table`` or ``schema.table``; validated and quoted).
    :param warehouse_conn_id: optional ``postgres`` or ``redshift`` connection id.
    :param max_error_rate: the largest share of rows that may end in error (invalid outputs not counted).
    :param max_invalid_output_rate: the largest share of rows whose answer does not follow the output schema.
    :param prices: batch price overrides for the actual cost (``batchkit.cost.pricing``).
    :param allowed_warehouse_conns: / ``allowed_tables``: what the Params may name (``None``: any; see ``policy``).
    :param task_memory_mb: this task process's memory budget: the merge and a DuckDB load size themselves to it
        and spill the rest to local disk (``batchkit.memory``).
    :param pipeline_id: as for ``SplitPartitionOperator``.
    """

    template_fields = (
        "results",
        "split",
        "staging_root",
        "database",
        "table",
        "warehouse_conn_id",
        "max_error_rate",
        "max_invalid_output_rate",
        "prices",
    )

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
        max_invalid_output_rate: float = 1.0,
        prices: dict[str, Any] | None = None,
        storage_conn_id: str | None = None,
        allowed_warehouse_conns: list[str] | None = None,
        allowed_tables: list[str] | None = None,
        task_memory_mb: int = DEFAULT_TASK_MEMORY_MB,
        pipeline_id: str = "",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "none_failed")
        super().__init__(**kwargs)
        self.pipeline_id = pipeline_id
        self.allowed_warehouse_conns, self.allowed_tables = allowed_warehouse_conns, allowed_tables
        self.results, self.database, self.table, self.warehouse_conn_id = results, database, table, warehouse_conn_id
        self.max_error_rate, self.storage_conn_id = max_error_rate, storage_conn_id
        self.max_invalid_output_rate, self.prices = max_invalid_output_rate, prices
        self.split, self.staging_root, self.task_memory_mb = split, staging_root, int(task_memory_mb)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from batchkit.cost.pricing import usd
        from batchkit.results.merge import merge_partition
        from batchkit.split.manifest import Manifest
        from batchkit.warehouse.guard import check_results
        from openai_batch.policy import check_warehouse
        from openai_batch.staging import RunStaging, connect_storage

        check_warehouse(self.warehouse_conn_id or "", self.table, self.allowed_warehouse_conns, self.allowed_tables)
        split = self.split if isinstance(self.split, dict) else {}
        if not split.get("rows"):
            raise AirflowFailException("the split step recorded no staged rows (XCom 'split'); clear the run")
        if as_bool(split.get("dry_run")):
            raise AirflowSkipException("dry run: nothing was submitted, so nothing is loaded")
        run = TaskRun.of(context, self.pipeline_id)
        partition = run.partition
        connect_storage(split["rows"], self.storage_conn_id)
        staging = RunStaging(self.staging_root, run, self.storage_conn_id)
        with staging.scratch() as scratch, airflow_errors(f"merging the answers of partition {partition}"):
            manifest = Manifest.load(split["manifest"])
            output_schema = manifest.parameters.get("output_schema")
            answers = staging.ledger().result_files()
            endpoint = manifest.parameters.get("endpoint")
            counts = merge_partition(
                split["rows"],
                answers,
                scratch / "result.parquet",
                self.task_memory_mb,
                output_schema,
                endpoint=endpoint,
            )
            merged = staging.publish(scratch / "result.parquet", "merged", "result.parquet")
        given = self.results or []
        # xcom_pull of a mapped task gives a list, except when it mapped to a single file: then the value itself
        results = [r for r in ([given] if isinstance(given, dict) else given) if r]
        report = self._reconcile(manifest.totals, results, counts)
        self.log.info("partition %s: %s", partition, ", ".join(f"{k} {v}" for k, v in report.items()))
        usage = self._usage(staging.ledger(), results, price_vendor(split))
        self.log.info(
            "this run used %d prompt + %d completion tokens: %s at batch prices (estimated before: %s)",
            usage["prompt_tokens"],
            usage["completion_tokens"],
            usd(usage["usd"]),
            usd((manifest.estimate or {}).get("usd")),
        )
        numbers = {
            "partition": partition,
            "merged_file": merged,
            **report,
            "usage": usage,
            "cost_usd": usage["usd"],
            "estimated_cost_usd": (manifest.estimate or {}).get("usd"),
            "report": staging.report_url(),  # written by the report step that follows
        }
        context["ti"].xcom_push(key=NUMBERS_KEY, value=numbers)  # kept when the checks below refuse the load
        with airflow_errors(f"loading partition {partition} into {self.table}"):
            check_results(counts, merged, partition, self.table, self.max_error_rate, self.max_invalid_output_rate)
            target, rows = load_partition(
                self.warehouse_conn_id, self.database, self.table, [merged], partition, run.run_id, self.task_memory_mb
            )
        self.log.info("loaded %d rows into %s table %s for partition %s", rows, target, self.table, partition)
        cost = {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "usd")}
        self._emit(context, target, {"partition": partition, "rows": rows, "table": self.table, **cost})
        if rows != counts["rows"]:
            raise AirflowException(f"loaded {rows} rows but the partition has {counts['rows']}")
        return {"warehouse": target, "table": self.table, **numbers}

    def _usage(self, ledger: Any, results: list[dict[str, Any]], vendor: str) -> dict[str, Any]:
        """Tokens and USD this run's batches used at ``vendor``'s prices, per batch file and in total (answers
        reused cost nothing)."""
        from batchkit.cost.usage import USAGE_COLUMNS, total, usage_by_batch

        batch_ids = [b for r in results for b in r.get("batch_ids", [])]
        by_batch = usage_by_batch(ledger.each_result(batch_ids, USAGE_COLUMNS), self.prices or None, vendor)
        files = []
        for r in results:
            used = [by_batch[b] for b in r.get("batch_ids", []) if b in by_batch]
            files.append({"index": r.get("index"), "batch_ids": r.get("batch_ids", []), **total(used)})
        return {**total(list(by_batch.values())), "files": files}

    def _emit(self, context: Any, target: str, extra: dict[str, Any]) -> None:
        """An asset event for the table actually loaded: an ``AssetAlias`` outlet resolves to the Asset named after
        the warehouse and table (``postgres://host:5432/db/schema/table``, ``duckdb:/path/file.duckdb/table``)."""
        from airflow.sdk import Asset, AssetAlias

        for outlet in self.outlets:
            if isinstance(outlet, AssetAlias):
                context["outlet_events"][outlet].add(Asset(table_uri(target, self.table)), extra=extra)
            else:
                context["outlet_events"][outlet].extra = extra

    @staticmethod
    def _reconcile(totals: dict[str, int], results: list[dict[str, Any]], counts: dict[str, int]) -> dict[str, int]:
        """Input rows (the split manifest's totals) against what was sent, reused, answered and merged."""
        return {
            "input_rows": totals["rows_read"],
            "requests_submitted": sum(r.get("requests", 0) for r in results),
            "resubmitted": sum(r.get("resubmitted", 0) for r in results),
            "reused": totals.get("reused", 0),
            "results_ok": counts["ok"],
            "results_error": counts["errors"] - counts["invalid"],
            "results_invalid_output": counts["invalid"],
            "merged": counts["rows"],
        }
