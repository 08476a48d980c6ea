"""Providers nobody here wrote, unmodified, against the emulator through real Airflow connections:
apache-airflow-providers-openai (an `openai` connection) and apache-airflow-providers-anthropic (an `anthropic`
connection whose host is the emulator: Message Batches)."""

import asyncio
import json
import time

import pytest

from tests.emulator_client import chat_line, jsonl


@pytest.fixture
def openai_conn(emulator, monkeypatch):
    emu = emulator()
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENAI_EMULATOR", json.dumps({"conn_type": "openai", "password": "unused", "host": emu.base_url})
    )
    return "openai_emulator"


def test_trigger_batch_operator_runs_a_batch(openai_conn, tmp_path):
    from airflow.providers.openai.hooks.openai import OpenAIHook
    from airflow.providers.openai.operators.openai import OpenAITriggerBatchOperator

    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(chat_line(f"r{i}")) + "\n" for i in range(5)))
    hook = OpenAIHook(conn_id=openai_conn)
    file_id = hook.upload_file(str(path), purpose="batch").id
    operator = OpenAITriggerBatchOperator(
        task_id="trigger",
        conn_id=openai_conn,
        file_id=file_id,
        endpoint="/v1/chat/completions",
        metadata={"source": "test"},
        wait_seconds=0.1,
        deferrable=False,
    )
    batch_id = operator.execute({})
    batch = hook.get_batch(batch_id)
    assert batch.status == "completed" and batch.metadata == {"source": "test"}
    assert len(jsonl(hook.conn, batch.output_file_id)) == 5


def test_provider_trigger_polls_to_success(openai_conn, tmp_path):
    from airflow.providers.openai.hooks.openai import OpenAIHook
    from airflow.providers.openai.triggers.openai import OpenAIBatchTrigger

    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(chat_line("a")) + "\n")
    hook = OpenAIHook(conn_id=openai_conn)
    batch = hook.create_batch(file_id=hook.upload_file(str(path), purpose="batch").id, endpoint="/v1/chat/completions")
    trigger = OpenAIBatchTrigger(conn_id=openai_conn, batch_id=batch.id, poll_interval=0.1, timeout=30)
    event = asyncio.run(anext(trigger.run()))
    assert event.payload["status"] == "success" and event.payload["batch_id"] == batch.id


ANTHROPIC_KEY = "sk-ant-provider-0123456789"
CLAUDE = "claude-haiku-4-5"


@pytest.fixture
def anthropic_conn(emulator, monkeypatch):
    """An `anthropic` connection (apache-airflow-providers-anthropic) to an emulator started with ``args``."""

    def connect(*args: str) -> str:
        emu = emulator(*args, env={"BATCHKIT_EMULATOR_API_KEY": ANTHROPIC_KEY})
        conn = {"conn_type": "anthropic", "password": ANTHROPIC_KEY, "host": emu.url, "extra": {"model": CLAUDE}}
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_EMULATOR", json.dumps(conn))
        return "anthropic_emulator"

    return connect


class TaskInstanceXCom:
    """The one part of a task instance AnthropicBatchOperator.execute uses: ``xcom_push``, recorded."""

    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key: str, value) -> None:
        self.pushed[key] = value


def claude_requests(count: int) -> list[dict]:
    """Requests with no model: the operator fills in the connection's (extra.model)."""
    message = {"role": "user", "content": "rate this"}
    return [{"custom_id": f"row-{i}", "params": {"max_tokens": 64, "messages": [message]}} for i in range(count)]


def test_anthropic_batch_operator_runs_a_batch(anthropic_conn):
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook
    from airflow.providers.anthropic.operators.batch import AnthropicBatchOperator

    conn_id = anthropic_conn()
    ti = TaskInstanceXCom()
    operator = AnthropicBatchOperator(
        task_id="claude", requests=claude_requests(5), conn_id=conn_id, deferrable=False, poll_interval=0.1
    )
    batch_id = operator.execute({"ti": ti})
    assert ti.pushed == {"batch_id": batch_id} and batch_id.startswith("msgbatch_")
    hook = AnthropicHook(conn_id=conn_id)
    assert hook.get_batch(batch_id).request_counts.succeeded == 5
    results = list(hook.stream_batch_results(batch_id))
    assert sorted(r.custom_id for r in results) == [f"row-{i}" for i in range(5)]
    assert {r.result.message.model for r in results} == {CLAUDE}
    assert [b.id for b in hook.list_batches(limit=5)] == [batch_id]


def test_anthropic_batch_sensor_waits_and_applies_the_policy(anthropic_conn):
    from airflow.providers.anthropic.exceptions import AnthropicBatchJobError
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook
    from airflow.providers.anthropic.operators.batch import AnthropicBatchOperator
    from airflow.providers.anthropic.sensors.batch import AnthropicBatchSensor
    from airflow.providers.common.compat.sdk import AirflowSkipException

    def submit(conn_id: str, count: int) -> str:
        operator = AnthropicBatchOperator(
            task_id="claude", requests=claude_requests(count), conn_id=conn_id, wait_for_completion=False
        )
        return operator.execute({"ti": TaskInstanceXCom()})

    def sensor(conn_id: str, batch_id: str, **kw) -> AnthropicBatchSensor:
        return AnthropicBatchSensor(task_id="wait", batch_id=batch_id, conn_id=conn_id, **kw)

    conn_id = anthropic_conn("--seconds-per-request", "0.01")
    batch_id = submit(conn_id, 100)
    assert sensor(conn_id, batch_id).poke({}) is False
    AnthropicHook(conn_id=conn_id).wait_for_batch(batch_id, wait_seconds=0.1, timeout=30)
    assert sensor(conn_id, batch_id).poke({}) is True

    conn_id = anthropic_conn("--line-failure-rate", "0.5", "--seed", "1")
    batch_id = submit(conn_id, 20)
    AnthropicHook(conn_id=conn_id).wait_for_batch(batch_id, wait_seconds=0.1, timeout=30)
    assert sensor(conn_id, batch_id).poke({}) is True  # partial failures: a warning by default
    with pytest.raises(AnthropicBatchJobError, match="errored="):
        sensor(conn_id, batch_id, fail_on_partial_error=True).poke({})

    conn_id = anthropic_conn("--stuck-rate", "1")
    batch_id = submit(conn_id, 3)
    hook = AnthropicHook(conn_id=conn_id)
    hook.cancel_batch(batch_id)
    hook.wait_for_batch(batch_id, wait_seconds=0.1, timeout=30)
    with pytest.raises(AirflowSkipException, match="fully cancelled"):
        sensor(conn_id, batch_id).poke({})


def test_anthropic_trigger_polls_to_success(anthropic_conn):
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook
    from airflow.providers.anthropic.triggers.batch import AnthropicBatchTrigger

    conn_id = anthropic_conn("--seconds-per-request", "0.01", "--completion-window-seconds", "0.5")
    batch = AnthropicHook(conn_id=conn_id).create_batch(claude_requests(200))
    trigger = AnthropicBatchTrigger(conn_id=conn_id, batch_id=batch.id, poll_interval=0.1, end_time=time.time() + 30)
    event = asyncio.run(anext(trigger.run()))
    counts = event.payload["request_counts"]
    assert event.payload["status"] == "success" and event.payload["batch_id"] == batch.id
    assert counts["expired"] > 0 and counts["succeeded"] + counts["expired"] == 200 and counts["processing"] == 0
