"""Submitting never bills a file twice: retries after a lost create response adopt the batch that exists."""

import json
from types import SimpleNamespace

import openai
import pytest

from tests.emulator_client import chat_line, client_for, upload


class StateStore:
    """Airflow's task state store contract (get/set of JSON values), in memory."""

    def __init__(self):
        self.values = {}

    def get(self, key, default=None):
        return self.values.get(key, default)

    def set(self, key, value, **_):
        self.values[key] = value


def context(state: StateStore, run_id: str = "manual__1") -> dict:
    ti = SimpleNamespace(dag_id="d", run_id=run_id, task_id="batch.submit", map_index=0)
    dag = SimpleNamespace(dag_id="d")
    return {"ti": ti, "task_state_store": state, "run_id": run_id, "params": {"partition": "p"}, "dag": dag}


def test_the_sdk_alone_would_create_duplicates(emulator, tmp_path):
    emu = emulator("--create-delay-seconds", "1.5")
    client = client_for(emu, max_retries=2, timeout=0.5)
    file_id = upload(client, tmp_path, [chat_line("a")])
    with pytest.raises(openai.APITimeoutError):
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert len(client_for(emu).batches.list().data) == 3  # one per automatic retry: the trap we avoid


def test_submit_adopts_the_batch_whose_create_timed_out(emulator, tmp_path, monkeypatch):
    from openai_batch.operators import SubmitBatchOperator

    emu = emulator("--create-delay-seconds", "1.5")
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENAI_SLOW",
        json.dumps(
            {
                "conn_type": "openai",
                "password": "x",
                "host": emu.base_url,
                "extra": {"openai_client_kwargs": {"timeout": 0.5}},
            }
        ),
    )
    path = tmp_path / "batch-00000.jsonl"
    path.write_text(json.dumps(chat_line("a")) + "\n")
    descriptor = {
        "index": 0,
        "path": str(path),
        "requests": 1,
        "sha256": "ab" * 32,
        "partition": "p",
        "manifest": "unused",
    }
    state = StateStore()
    staging = str(tmp_path / "staging")
    operator = SubmitBatchOperator(
        task_id="submit", batch_file=descriptor, staging_root=staging, conn_id="openai_slow", wait_for_completion=False
    )
    batch_id = operator.execute(context(state))
    batches = client_for(emu).batches.list().data
    assert [b.id for b in batches] == [batch_id] and state.get("batch_id") == batch_id
    assert operator.execute(context(state)) == batch_id  # a retry of the task adopts it too
    assert operator.execute(context(StateStore())) == batch_id  # even with no state left (the ledger's claim)
    assert operator.execute(context(StateStore(), "scheduled__2")) == batch_id  # and so does another run
    assert len(client_for(emu).batches.list().data) == 1


def test_a_claim_in_progress_is_waited_for_and_a_stale_one_taken_over(emulator, tmp_path, monkeypatch):
    import time

    from airflow.sdk.exceptions import AirflowException, TaskDeferred

    from batchkit import storage
    from batchkit.ledger import Ledger
    from openai_batch import claims
    from openai_batch.context import batch_key
    from openai_batch.operators import SubmitBatchOperator

    emu = emulator("--validation-seconds", "30")  # the batch stays live while the test looks at it
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENAI_EMU", json.dumps({"conn_type": "openai", "password": "x", "host": emu.base_url})
    )
    monkeypatch.setattr(claims, "CLAIM_WAIT_SECONDS", 0.5)
    path = tmp_path / "batch-00000.jsonl"
    path.write_text(json.dumps(chat_line("a")) + "\n")
    descriptor = {"index": 0, "path": str(path), "requests": 1, "sha256": "ef" * 32, "partition": "p"}
    staging = str(tmp_path / "staging")
    ledger = Ledger.for_partition(staging, "d", "p")
    key = batch_key("d", "p", "ef" * 32)
    assert ledger.claim(key, "d/other_run/batch.submit[0]", "ef" * 32) is None  # another run is creating it
    operator = SubmitBatchOperator(task_id="submit", batch_file=descriptor, staging_root=staging, conn_id="openai_emu")
    operator.wait_for_completion = False
    with pytest.raises(AirflowException, match=r"d/other_run/batch.submit\[0\] is creating the batch"):
        operator.execute(context(StateStore()))
    assert client_for(emu).batches.list().data == []
    claim = ledger.claim_of(key)
    claim.claimed_at = time.time() - 3600  # its creator died an hour ago without creating anything
    storage.write_bytes(f"{ledger.root}/batches/{key}.json", claim.to_json())
    batch_id = operator.execute(context(StateStore()))
    assert [b.id for b in client_for(emu).batches.list().data] == [batch_id]
    assert ledger.claim_of(key).batch_id == batch_id and ledger.claim_of(key).owner == "d/manual__1/batch.submit[0]"

    operator.wait_for_completion = True  # the DAG's default: hold the task until the batch has ended
    with pytest.raises(TaskDeferred) as waiting:
        operator.execute(context(StateStore()))
    assert type(waiting.value.trigger).__name__ == "OpenAIBatchStatusTrigger" and waiting.value.method_name == "follow"
    assert waiting.value.trigger.batch_id == batch_id


def test_refused_creations_wait_on_the_triggerer_then_give_up(emulator, tmp_path, monkeypatch):
    from datetime import timedelta

    from airflow.sdk.exceptions import AirflowException, TaskDeferred

    from openai_batch.operators import SubmitBatchOperator

    emu = emulator("--create-error-rate", "1")  # every creation is refused with 429
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENAI_BUSY",
        json.dumps(
            {"conn_type": "openai", "password": "x", "host": emu.base_url, "extra": {"openai_client_kwargs": {}}}
        ),
    )
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # the hook's quick in-process attempts
    path = tmp_path / "batch-00000.jsonl"
    path.write_text(json.dumps(chat_line("a")) + "\n")
    descriptor = {"index": 0, "path": str(path), "requests": 1, "sha256": "cd" * 32, "partition": "p"}
    operator = SubmitBatchOperator(
        task_id="submit",
        batch_file=descriptor,
        staging_root=str(tmp_path / "staging"),
        conn_id="openai_busy",
        wait_for_completion=False,
        queue_wait=timedelta(minutes=5),
        max_queue_waits=2,
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context(StateStore()))
    assert type(deferred.value.trigger).__name__ == "DateTimeTrigger"
    assert deferred.value.method_name == "execute" and deferred.value.kwargs == {"waits": 1}
    with pytest.raises(AirflowException, match=r"still refused after waiting 2 x 0:05:00"):
        operator.execute(context(StateStore()), waits=2)
    assert client_for(emu).batches.list().data == []
