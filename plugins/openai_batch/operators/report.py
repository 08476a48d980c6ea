"""Step 6: the run report (HTML + PNG) in the run's staging area, whatever the run's outcome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from airflow.sdk import BaseOperator

from batchkit.results.answers import BEST_ANSWER_COLUMNS
from openai_batch.context import TaskRun
from openai_batch.links import RunReportLink
from openai_batch.operators.common import as_bool, price_vendor

REPORT_COLUMNS = [
    "custom_id",
    "fingerprint",
    "batch_id",
    "model",
    "error_code",
    "error_message",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",  # the bill prices cached input as such (batchkit.cost.usage)
    "cache_write_tokens",
    *BEST_ANSWER_COLUMNS,
]


class RunReportOperator(BaseOperator):
    """Write ``report/report.html`` (self-contained) and ``report/report.png`` into the run's staging area.

    Runs when everything before it is done, failed or not (``trigger_rule="all_done"``): per batch file status,
    requests, batches, tokens, USD and latency; error codes with examples; reconciliation; estimate against the
    actual bill. Everything comes from the steps' XComs and the partition's ledger, so a clear rewrites it.

    :param split: the split step's XCom ``split``; :param results: the collect steps' outputs;
    :param load: the load step's XCom ``numbers`` (reconciliation and usage), pushed even when it refused.
    :param pipeline_id: as for ``SplitPartitionOperator``.
    :returns: ``{"html", "png", "outcome", "cost_usd", "estimated_cost_usd"}``.
    """

    template_fields = ("split", "results", "load", "staging_root", "prices")
    operator_extra_links = (RunReportLink(),)

    def __init__(
        self,
        *,
        split: dict[str, Any] | None,
        results: list[dict[str, Any]] | dict[str, Any] | None,
        load: dict[str, Any] | None,
        staging_root: str,
        storage_conn_id: str | None = None,
        prices: dict[str, Any] | None = None,
        pipeline_id: str = "",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.pipeline_id = pipeline_id
        self.split, self.results, self.load, self.staging_root = split, results, load, staging_root
        self.storage_conn_id, self.prices = storage_conn_id, prices
        self.report_url: str | None = None  # set once written: the "Run report" link

    def execute(self, context: Any) -> dict[str, Any]:
        from batchkit.cost.pricing import usd
        from batchkit.cost.report import RunReport, chart_png, errors_of, render_html
        from batchkit.cost.usage import usage_by_batch
        from batchkit.split.manifest import Manifest
        from openai_batch.staging import REPORT_HTML, RunStaging, connect_storage

        split = self.split if isinstance(self.split, dict) else {}
        load = self.load if isinstance(self.load, dict) else {}
        given = self.results or []
        collected = [r for r in ([given] if isinstance(given, dict) else given) if isinstance(r, dict)]
        if split.get("manifest"):
            connect_storage(split["manifest"], self.storage_conn_id)
        run = TaskRun.of(context, self.pipeline_id)
        staging = RunStaging(self.staging_root, run, self.storage_conn_id)
        manifest = Manifest.load(split["manifest"]) if split.get("manifest") else None
        ledger, usage = staging.ledger(), {}

        def chains() -> Iterator[Any]:  # one batch file's attempts at a time: a run's answers may not fit in memory
            for result in collected:
                answers = ledger.read_results(result.get("batch_ids", []), REPORT_COLUMNS)
                usage.update(usage_by_batch([answers], self.prices or None, price_vendor(split)))
                yield answers

        codes, examples = errors_of(chains())
        report = RunReport(
            dag_id=run.dag_id,
            run_id=run.run_id,
            partition=run.partition,
            outcome=self._outcome(context, split),
            estimate=manifest.estimate if manifest else None,
            totals=manifest.totals if manifest else {},
            files=_files(manifest, collected, usage),
            reconciliation={k: v for k, v in load.items() if isinstance(v, int | float) and k != "cost_usd"},
            error_codes=codes,
            examples=examples,
        )
        png = chart_png(report)
        with staging.scratch() as scratch:
            (scratch / "report.png").write_bytes(png)
            (scratch / "report.html").write_text(render_html(report, png), encoding="utf-8")
            png_url = staging.publish(scratch / "report.png", "report", "report.png")
            html_url = staging.publish(scratch / "report.html", *REPORT_HTML)
        self.report_url = html_url
        used = report.used
        self.log.info(
            "run report: %s (%s; %d file(s); actual cost %s)",
            html_url,
            report.outcome,
            len(report.files),
            usd(used["usd"]),
        )
        estimated = (report.estimate or {}).get("usd")
        return {
            "html": html_url,
            "png": png_url,
            "outcome": report.outcome,
            "cost_usd": used["usd"],
            "estimated_cost_usd": estimated,
        }

    @staticmethod
    def _outcome(context: Any, split: dict[str, Any]) -> str:
        """``dry run``, ``success`` or ``failed: <tasks>``, from the run's task states so far."""
        if as_bool(split.get("dry_run")):
            return "dry run: nothing submitted"
        try:
            states = context["ti"].get_task_states(dag_id=context["dag"].dag_id, run_ids=[context["run_id"]])
            mine = states.get(context["run_id"], {})
        except Exception:  # the report is written whatever the state API says
            return "unknown"
        failed = sorted({task for task, state in mine.items() if state in ("failed", "upstream_failed")})
        return f"failed: {', '.join(failed)}" if failed else "success"


def _files(manifest: Any, collected: list[dict[str, Any]], usage: dict[str, dict[str, Any]]) -> list[Any]:
    """One report row per batch file of the split, filled from its collect result and its batches' usage."""
    from batchkit.cost.report import FileRow
    from batchkit.cost.usage import total

    by_index = {r.get("index"): r for r in collected}
    rows = []
    for index, entry in enumerate(manifest.files if manifest else []):
        row = FileRow(index, entry.path, entry.requests)
        result = by_index.get(index)
        if result:
            batches = result.get("batches") or []
            used = total([usage[b] for b in result.get("batch_ids", []) if b in usage])
            row.status = batches[-1]["status"] if batches else "collected"
            row.attempts, row.ok, row.errors = len(result.get("batch_ids", [])), result.get("ok"), result.get("errors")
            row.prompt_tokens, row.completion_tokens, row.usd = (
                used["prompt_tokens"],
                used["completion_tokens"],
                used["usd"],
            )
            ends = [b["ended_at"] for b in batches if b.get("ended_at")]
            if batches and ends:
                row.latency_s = max(ends) - batches[0]["created_at"]
        rows.append(row)
    return rows
