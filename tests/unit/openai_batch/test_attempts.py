"""The attempt loop against a real emulator: a batch the pipeline cancels at its deadline keeps its answered
lines, and its unfinished lines go into the next attempt (a person's cancel would end the file instead)."""

import json
import time
from collections import Counter
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.ledger import Ledger
from batchkit.split.splitter import SplitConfig, split
from openai_batch.context import TaskRun
from tests.emulator_client import client_for, wait
from tests.helpers import split_descriptors


class StateStore(dict):
    def set(self, key, value, **_):
        self[key] = value


def test_a_deadline_cancel_keeps_answers_and_resubmits_the_rest(emulator, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import TaskDeferred

    from openai_batch.operators import CollectResultsOperator, SubmitBatchOperator

    emu = emulator("--seconds-per-request", "1", "--validation-seconds", "0")
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENAI_D", json.dumps({"conn_type": "openai", "password": "x", "host": emu.base_url})
    )
    pq.write_table(pa.table({"id": list(range(6)), "text": [f"q {i}" for i in range(6)]}), tmp_path / "in.parquet")
    manifest = split(
        str(tmp_path / "in.parquet"),
        tmp_path / "split",
        SplitConfig(model="gpt-4o-mini", prompt_column="text", id_column="id"),
    )
    descriptor = split_descriptors(tmp_path / "split", manifest)[0]
    context = {
        "ti": SimpleNamespace(dag_id="d", run_id="r", task_id="batch.submit", map_index=0),
        "run_id": "r",
        "dag": SimpleNamespace(dag_id="d"),
        "params": {"partition": "p"},
        "task_state_store": StateStore(),
    }
    staging = str(tmp_path / "staging")
    submit = SubmitBatchOperator(task_id="submit", batch_file=descriptor, staging_root=staging, conn_id="openai_d")
    with pytest.raises(TaskDeferred) as waiting:
        submit.execute(context)
    first = waiting.value.trigger.batch_id
    client = client_for(emu)
    wait(client, first, timeout=30, until=("in_progress",))
    while client.batches.retrieve(first).request_counts.completed < 2:
        time.sleep(0.1)
    with pytest.raises(TaskDeferred):  # the trigger reports the deadline: cancel, then wait for it to stop
        submit.follow(context, event={"status": "timeout", "batch_id": first})
    assert wait(client, first).status == "cancelled"
    with pytest.raises(TaskDeferred) as resubmitted:
        submit.follow(context)
    second = resubmitted.value.trigger.batch_id
    answered = client.batches.retrieve(first).request_counts.completed
    assert 2 <= answered < 6
    content = client.files.content(client.batches.retrieve(second).input_file_id).content.splitlines()
    assert len(content) == 6 - answered  # only the lines the cancel left unanswered
    claims = Ledger.for_partition(staging, "d", "p")
    assert claims.claim_of(submit.attempt_key(TaskRun.of(context), 1)).cancelled_at is not None

    assert wait(client, second).status == "completed"
    reads = Counter()
    claim_of = Ledger.claim_of
    monkeypatch.setattr(Ledger, "claim_of", lambda self, key: reads.update([key]) or claim_of(self, key))
    assert submit.follow(context) == first
    keys = [submit.attempt_key(TaskRun.of(context), n) for n in (1, 2, 3)]
    assert reads == Counter(keys), "one resume reads each claim of the chain once (and finds no third)"
    collect = CollectResultsOperator(
        task_id="collect", batch_file=descriptor, batch_id=first, staging_root=staging, conn_id="openai_d"
    )
    outcome = collect.execute(context)
    assert (outcome["rows"], outcome["ok"], outcome["batch_ids"]) == (6, 6, [first, second])
