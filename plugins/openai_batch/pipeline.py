"""The batch pipeline as one call for your own DAGs: ``batch_pipeline`` builds

```
split ─► batch (mapped per batch file: submit ─► wait ─► collect) ─► load ─► report (a teardown)
prune_staging
```

at the top level of a DAG (the shipped ``openai_batch_inference``: task ids ``split``, ``batch.submit``...) or in a
task group (``<group>.split``, ``<group>.batch.submit``...), where it gets its own staging area and ledger
(``<staging>/<dag_id>/_pipelines/<group>/``), batch keys and asset alias, so pipelines of one DAG never meet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetAlias, BaseOperator, task_group
from airflow.sdk.definitions._internal.contextmanager import DagContext, TaskGroupContext
from airflow.sdk.definitions._internal.mixins import DependencyMixin
from airflow.sdk.definitions.taskgroup import TaskGroup

from batchkit.split.options import declared
from batchkit.split.split_config import SplitConfig
from openai_batch.notify import task_callbacks
from openai_batch.operators import (
    CollectResultsOperator,
    LoadToWarehouseOperator,
    PruneStagingOperator,
    RunReportOperator,
    SplitPartitionOperator,
    SubmitBatchOperator,
)
from openai_batch.operators.load import NUMBERS_KEY
from openai_batch.params import inference_params
from openai_batch.sensors import OpenAIBatchSensor
from openai_batch.settings import DEFAULT_TABLE, PipelineSettings

if TYPE_CHECKING:
    from airflow.sdk import DAG
    from airflow.sdk.definitions.edges import EdgeModifier

RESULTS_ALIAS = "openai_batch_results"  # the top-level pipeline's; one in a group: <alias>.<dag_id>.<group>
RUN_PARAMS = ("partition", "partition_format")  # read by every task from the run's Params, not pipeline options
# The UI names each mapped instance of the batch group after its file, e.g. "batch-00003 · 50,000 req" (rendered on
# the worker with the task's context once its fields, batch_file included, are rendered)
BATCH_FILE_LABEL = (
    "{{ task.batch_file.path.rsplit('/', 1)[-1].removesuffix('.jsonl') }} · "
    "{{ '{:,}'.format(task.batch_file.requests) }} req"
)


@dataclass(frozen=True, eq=False)
class Pipeline(DependencyMixin):
    """What ``batch_pipeline`` built. It takes part in ``>>``, ``<<`` and ``chain`` like a task group: upstream
    tasks precede ``split`` and ``prune_staging``, downstream ones follow ``load`` and ``prune_staging`` (the
    report is a teardown)."""

    pipeline_id: str  # its task group's id; empty: the DAG's top level
    group: TaskGroup | None  # the group it was built in (none at the top level)
    split: BaseOperator
    load: BaseOperator
    report: BaseOperator
    prune: BaseOperator
    results: AssetAlias  # each load adds the Asset of the table it loaded

    @property
    def roots(self) -> list[BaseOperator]:
        return self.group.roots if self.group else [self.split, self.prune]

    @property
    def leaves(self) -> list[BaseOperator]:
        return self.group.leaves if self.group else [self.load, self.prune]

    def set_upstream(
        self, other: DependencyMixin | Sequence[DependencyMixin], edge_modifier: EdgeModifier | None = None
    ) -> None:
        for node in [self.group] if self.group else self.roots:
            node.set_upstream(other, edge_modifier)

    def set_downstream(
        self, other: DependencyMixin | Sequence[DependencyMixin], edge_modifier: EdgeModifier | None = None
    ) -> None:
        for node in [self.group] if self.group else self.leaves:
            node.set_downstream(other, edge_modifier)

    def update_relative(
        self, other: DependencyMixin, upstream: bool = True, edge_modifier: EdgeModifier | None = None
    ) -> None:
        if self.group:  # the graph view draws one edge to the group
            self.group.update_relative(other, upstream, edge_modifier)


def batch_pipeline(
    group_id: str | None = None,
    *,
    settings: PipelineSettings | None = None,
    dag: DAG | None = None,
    **options: Any,
) -> Pipeline:
    """Build the pipeline in ``dag`` (default: the DAG being defined), which must render templates as native
    objects (``render_template_as_native_obj=True``).

    :param group_id: build it in a new task group of that id, with its own staging area, ledger, batch keys and
        asset alias; none: in the current group (the DAG's top level: the shipped DAG's ids and layout).
    :param settings: deployment settings (default: ``PipelineSettings.from_env()``).
    :param options: per-pipeline choices, named as the shipped DAG's Params (``source``, ``target_table``,
        ``model``, ``prompt_template``, ``system_prompt``, ``output_schema``, ``max_attempts``...): the value given
        (templated) wins; else the DAG's Param of that name (the trigger form can change it); else that Param's
        default. ``source`` is required when the DAG has no such Param.
    """
    dag = dag or DagContext.get_current()
    if dag is None:
        raise TypeError("batch_pipeline needs a DAG: call it inside `with DAG(...)` or @dag, or pass dag=")
    if not dag.render_template_as_native_obj:
        raise ValueError(
            f"DAG {dag.dag_id} must set render_template_as_native_obj=True: the pipeline's tasks pass "
            "XComs and Variables as objects through templates"
        )
    settings = settings or PipelineSettings.from_env()
    option = _options(dag, settings, options)
    with dag, TaskGroup(group_id) if group_id else TaskGroupContext.get_current(dag) as group:
        pipeline_id = group.group_id or ""
        return _build(dag, settings, option, pipeline_id, group if group_id else None)


def _options(dag: DAG, settings: PipelineSettings, given: dict[str, Any]) -> dict[str, Any]:
    """Each option: the value given, else the DAG's Param (a ``DagParam``: read natively, whatever the DAG's
    rendering), else the Param's default."""
    defaults = inference_params(settings.data_root, settings.partition_format, DEFAULT_TABLE, settings.conn_id)
    names = [name for name in defaults if name not in RUN_PARAMS]
    if unknown := sorted(set(given) - set(names)):
        raise TypeError(f"unknown pipeline options: {', '.join(unknown)}; known: {', '.join(names)}")
    if "source" not in given and "source" not in dag.params:
        raise TypeError("batch_pipeline needs source= (the DAG has no 'source' Param)")
    return {
        name: given[name] if name in given else dag.param(name) if name in dag.params else defaults[name].value
        for name in names
    }


def _build(dag: DAG, s: PipelineSettings, o: dict[str, Any], pipeline_id: str, group: TaskGroup | None) -> Pipeline:
    """The tasks, wired in the current task group; ``s``: the settings, ``o``: every option resolved."""
    task = {"retries": s.retries, "retry_delay": s.retry_delay, "retry_exponential_backoff": True}
    task |= task_callbacks(s.notify)
    common = {**task, "pipeline_id": pipeline_id}  # the sensor has no staging: no pipeline_id
    storage = {"staging_root": s.staging_root, "storage_conn_id": s.storage_conn_id}
    allowed = {
        "allowed_warehouse_conns": _listed(s.allowed_warehouse_conns),
        "allowed_tables": _listed(s.allowed_tables),
    }
    batches = {"conn_id": o["conn_id"], "poll_interval": s.poll_seconds, "map_index_template": BATCH_FILE_LABEL}
    api_conns = {"allowed_api_conns": _listed(s.allowed_api_conns)}
    split = SplitPartitionOperator(
        task_id="split",
        source=o["source"],
        **{spec.operator: o[spec.param] for _, spec in declared(SplitConfig) if spec.param and spec.operator},
        dry_run=o["dry_run"],
        reuse_results=o["reuse_results"],
        max_cost_usd=o["max_cost_usd"],
        prices=s.prices,
        conn_id=o["conn_id"],
        allowed_sources=_listed(s.allowed_sources),
        **api_conns,
        warehouse_conn_id=o["warehouse_conn_id"],
        table=o["target_table"],
        database=s.warehouse,
        **storage,
        **allowed,
        **common,
        doc_md="Splits the partition into batch files in the run's staging area, leaving out requests the "
        "ledger already answered; checks the model first. A retry or clear splits again (nothing was submitted).",
    )

    @task_group(group_id="batch")
    def per_batch_file(batch_file: dict[str, Any]) -> BaseOperator:
        submit = SubmitBatchOperator(
            task_id="submit",
            batch_file=batch_file,
            endpoint=o["endpoint"],
            max_attempts=o["max_attempts"],
            queue_wait=s.queue_wait,
            max_active_tis_per_dagrun=s.max_parallel_batches,  # deferred until its batches end: the in-flight bound
            pool=s.pool,
            **api_conns,
            **storage,
            **batches,
            **common,
            doc_md="Uploads this batch file, creates its batch once (claimed in the ledger), then waits on the "
            "triggerer and resubmits retryable lines. A retry or clear adopts the batch already created: a file "
            "is never paid for twice. *OpenAI batch* opens the batch.",
        )
        wait = OpenAIBatchSensor(
            task_id="wait",
            batch_id=submit.output,
            batch_file=batch_file,
            max_active_tis_per_dagrun=s.max_parallel_batches,
            **batches,
            **task,
            doc_md="The batch's verdict: waits on the triggerer until it is terminal (here it already is: submit "
            "follows it); fails on a failed batch. A retry or clear polls the same batch again; marking it failed "
            "cancels it.",
        )
        collect = CollectResultsOperator(
            task_id="collect",
            batch_file=batch_file,
            batch_id=submit.output,
            queue_wait=s.queue_wait,
            max_attempts=o["max_attempts"],
            max_active_tis_per_dagrun=s.collects_in_flight,
            **storage,
            **batches,
            **common,
            doc_md="Makes sure every answer of this file's batches is in the ledger (downloads what is missing, "
            "resubmits what may still be answered). A retry or clear finds them recorded and does no new work.",
        )
        wait >> collect
        return collect

    collected = per_batch_file.expand(batch_file=split.output)
    split_xcom, results_xcom = _pull(split.task_id, "split"), _pull(collected.task_id)
    results = AssetAlias(f"{RESULTS_ALIAS}.{dag.dag_id}.{pipeline_id}" if pipeline_id else RESULTS_ALIAS)
    load = LoadToWarehouseOperator(
        task_id="load",
        results=results_xcom,
        split=split_xcom,
        database=s.warehouse,
        table=o["target_table"],
        warehouse_conn_id=o["warehouse_conn_id"],
        max_error_rate=o["max_error_rate"],
        max_invalid_output_rate=o["max_invalid_output_rate"],
        prices=s.prices,
        task_memory_mb=s.task_memory_mb,
        outlets=[results],
        **storage,
        **allowed,
        **common,
        doc_md="Merges the ledger's answers onto the staged rows and replaces the partition in the table, unless "
        "too many rows failed (the table then stays as it was). A retry or clear loads the same rows again.",
    )
    collected >> load
    # A teardown: it runs whatever happened before it, and the run's state stays the pipeline's own.
    report = RunReportOperator(
        task_id="report",
        split=split_xcom,
        results=results_xcom,
        load=_pull(load.task_id, NUMBERS_KEY),  # pushed even when the load refuses
        prices=s.prices,
        **storage,
        **common,
        doc_md="Writes report/report.html and report.png into the run's staging area, whatever happened before "
        "it (a teardown: it never decides the run's state): files, batches, tokens, cost, errors. A clear "
        "rewrites it.",
    ).as_teardown()
    load >> report
    prune = PruneStagingOperator(
        task_id="prune_staging",
        retention=s.retention,
        source=o["source"],
        **storage,
        **common,
        doc_md="Deletes staging areas of this pipeline's runs older than the retention (never a ledger, never "
        "another pipeline's). Safe to retry or clear.",
    )
    return Pipeline(pipeline_id, group, split, load, report, prune, results)


def _pull(task_id: str, key: str | None = None) -> str:
    """A template pulling ``task_id``'s XCom (rendered natively: the object itself)."""
    return f"{{{{ ti.xcom_pull(task_ids={task_id!r}{f', key={key!r}' if key else ''}) }}}}"


def _listed(names: tuple[str, ...] | None) -> list[str] | None:
    return None if names is None else list(names)
