"""Housekeeping: delete the staging areas of old runs (never the ledger, the current run or the source)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator

from openai_batch.context import PLACEHOLDER, TaskRun


class PruneStagingOperator(BaseOperator):
    """Delete the staging areas of this pipeline's runs whose newest file is older than ``retention``.

    Only ``<staging_root>/<dag_id>/<partition>/<run_id>`` directories are candidates (a pipeline in a task group:
    those under ``<dag_id>/_pipelines/<pipeline_id>``; the top-level pipeline never enters ``_pipelines``); the
    ledgers, the current run's area and any directory holding or inside the source (everything before its first
    ``{partition...}``) are kept.

    :param pipeline_id: as for ``SplitPartitionOperator``.
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
        pipeline_id: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.staging_root, self.retention, self.source = staging_root, retention, source
        self.storage_conn_id, self.pipeline_id = storage_conn_id, pipeline_id

    def execute(self, context: Any) -> int:
        from batchkit.storage import prune
        from openai_batch.staging import RunStaging, pipeline_root, plain_url

        run = TaskRun.of(context, self.pipeline_id)
        root = plain_url(pipeline_root(self.staging_root, run, self.storage_conn_id))
        keep = [PLACEHOLDER.split(self.source)[0], RunStaging(self.staging_root, run, self.storage_conn_id).url()]
        deleted = prune(root, self.retention, protect=keep)
        for path in deleted:
            self.log.info("deleted staging area %s (older than %s)", path, self.retention)
        self.log.info("%d staging area(s) under %s older than %s deleted", len(deleted), root, self.retention)
        return len(deleted)
