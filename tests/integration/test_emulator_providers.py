"""apache-airflow-providers-openai, unmodified, against the emulator through an `openai` Airflow connection."""

import asyncio
import json

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
