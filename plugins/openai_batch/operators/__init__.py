"""Operators of the batch pipeline, one step per module: split -> submit (waits on the triggerer) -> (sensor)
-> collect -> load -> report (a teardown: written whatever the outcome), and prune.

They stay thin: the work is done by ``batchkit`` (Airflow-free), the hook and the ledger. XComs carry paths,
ids and counts only, never data. The OpenAI SDK, pyarrow and DuckDB are imported inside ``execute``: DAG files
that use these operators must parse fast.
"""

from openai_batch.operators.collect import CollectResultsOperator
from openai_batch.operators.common import as_bool, as_dict, as_list
from openai_batch.operators.load import LoadToWarehouseOperator
from openai_batch.operators.prune import PruneStagingOperator
from openai_batch.operators.report import RunReportOperator
from openai_batch.operators.split import SplitPartitionOperator
from openai_batch.operators.submit import SubmitBatchOperator
from openai_batch.queue_wait import wait_then_retry

__all__ = [
    "CollectResultsOperator",
    "LoadToWarehouseOperator",
    "PruneStagingOperator",
    "RunReportOperator",
    "SplitPartitionOperator",
    "SubmitBatchOperator",
    "as_bool",
    "as_dict",
    "as_list",
    "wait_then_retry",
]
