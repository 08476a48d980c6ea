"""The enqueued-token limit: a batch refused with token_limit_exceeded is not a failure of the run; the
collect step (or the submit step following its batch) waits, deferring, and resubmits it whole once the queue has
room."""

import json
import time
from datetime import timedelta
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.split.splitter import SplitConfig, split
from tests.emulator_client import client_for, wait
from tests.helpers import split_descriptors


def test_refused_batch_is_resubmitted_after_waiting(emulator, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import TaskDeferred

    from openai_batch.operators import CollectResultsOperator
    from openai_batch.sensors import OpenAIBatchSensor

    emu = emulator("--enqueued-token-limit", "3000", "--seconds-per-request", "0.02")
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENAI_Q", json.dumps({"conn_type": "openai", "password": "x", "host": emu.base_url})
    )
    pq.write_table(
        pa.table({"id": list(range(80)), "text": [f"question number {i}" for i in range(80)]}), tmp_path / "in.parquet"
    )
    manifest = split(
        str(tmp_path / "in.parquet"),
        tmp_path / "split",
        SplitConfig(model="gpt-4o-mini", prompt_column="text", id_column="id", max_requests=40),
    )
    client = client_for(emu)
    batch_ids = []
    for entry in manifest.files:
        with (tmp_path / "split" / entry.path).open("rb") as handle:
            file_id = client.files.create(file=handle, purpose="batch").id
        batch_ids.append(
            client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h").id
        )
    first, refused = wait(client, batch_ids[0], until=("in_progress",)), wait(client, batch_ids[1])
    assert first.status == "in_progress" and refused.errors.data[0].code == "token_limit_exceeded"

    handed_on = OpenAIBatchSensor(task_id="wait", batch_id=refused.id, conn_id="openai_q").execute({})
    assert handed_on["queue_full"] is True

    descriptor = split_descriptors(tmp_path / "split", manifest)[1]
    collect = CollectResultsOperator(
        task_id="collect",
        batch_file=descriptor,
        batch_id=refused.id,
        conn_id="openai_q",
        staging_root=str(tmp_path / "staging"),
        queue_wait=timedelta(seconds=1),
        max_attempts=1,  # the refusal is not an attempt: the one allowed attempt is still made
    )
    context = {
        "ti": SimpleNamespace(dag_id="d", run_id="r", task_id="collect", map_index=1),
        "run_id": "r",
        "dag": SimpleNamespace(dag_id="d"),
        "params": {"partition": "p"},
    }
    with pytest.raises(TaskDeferred) as waiting:
        collect.execute(context)
    assert type(waiting.value.trigger).__name__ == "DateTimeTrigger"
    wait(client, batch_ids[0])  # the queue drains
    time.sleep(1)
    assert waiting.value.kwargs == {"waited": True, "waits": 1}
    with pytest.raises(TaskDeferred) as resubmitted:
        collect.collect(context, **waiting.value.kwargs)
    retry_id = resubmitted.value.trigger.batch_id  # attempt 2: the whole file again, now waited on
    assert wait(client, retry_id).status == "completed"
    outcome = collect.collect(context)
    assert outcome["rows"] == 40 and outcome["ok"] == 40 and outcome["batch_ids"] == [refused.id, retry_id]
    results = pq.read_table(tmp_path / "staging" / "d" / "p" / "_ledger" / "results" / f"{retry_id}.parquet")
    assert results.column("status").to_pylist() == ["ok"] * 40
