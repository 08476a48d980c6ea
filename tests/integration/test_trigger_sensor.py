"""The trigger (as the triggerer runs it) and the sensor's decisions, against real emulator processes."""

import asyncio
import json
import time

import pytest

from .conftest import chat_line, client_for, upload, wait


@pytest.fixture
def conn(emulator, monkeypatch):
    """Start an emulator with the given args and point the ``openai_test`` connection at it."""

    def make(*args: str):
        emu = emulator(*args)
        monkeypatch.setenv(
            "AIRFLOW_CONN_OPENAI_TEST", json.dumps({"conn_type": "openai", "password": "unused", "host": emu.base_url})
        )
        return emu

    return make


def submit(emu, tmp_path, lines=3) -> str:
    client = client_for(emu)
    file_id = upload(client, tmp_path, [chat_line(f"r{i}") for i in range(lines)])
    return client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h").id


def first_event(trigger):
    from airflow.sdk.module_loading import import_string

    path, kwargs = trigger.serialize()
    rebuilt = import_string(path)(**kwargs)  # exactly what a (restarted) triggerer does
    assert rebuilt.serialize() == (path, kwargs)

    async def first():
        events = rebuilt.run()
        try:
            return (await asyncio.wait_for(anext(events), 60)).payload
        finally:
            await events.aclose()  # as the triggerer does: the client closes inside the running loop

    return asyncio.run(first())


def test_trigger_serialises_and_fires_on_completion(conn, tmp_path):
    from openai_batch.triggers import OpenAIBatchStatusTrigger

    batch_id = submit(conn("--seconds-per-request", "0.05"), tmp_path)
    event = first_event(OpenAIBatchStatusTrigger(batch_id, "openai_test", poll_interval=0.1, deadline=time.time() + 60))
    assert event["status"] == "completed" and event["batch_id"] == batch_id
    assert event["request_counts"] == {"total": 3, "completed": 3, "failed": 0}


def test_trigger_rides_out_api_errors(conn, tmp_path):
    from openai_batch.triggers import OpenAIBatchStatusTrigger

    emu = conn("--api-error-rate", "0.6", "--seed", "11")
    client = client_for(emu, max_retries=10)
    file_id = upload(client, tmp_path, [chat_line("a")])
    batch_id = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h").id
    event = first_event(
        OpenAIBatchStatusTrigger(
            batch_id, "openai_test", poll_interval=0.05, deadline=time.time() + 60, max_poll_interval=0.2
        )
    )
    assert event["status"] == "completed"


def test_trigger_deadline_and_on_kill_cancels_only_when_a_person_acted(conn, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    from openai_batch.triggers import OpenAIBatchStatusTrigger

    emu = conn("--stuck-rate", "1")
    batch_id = submit(emu, tmp_path)
    trigger = OpenAIBatchStatusTrigger(batch_id, "openai_test", poll_interval=0.1, deadline=time.time() + 1.5)
    started = time.monotonic()
    assert first_event(trigger)["status"] == "timeout"
    assert 1.0 < time.monotonic() - started < 10

    # The triggerer asks Airflow's execution API for the task's state; here its answer is given directly.
    trigger.task_instance = SimpleNamespace(dag_id="d", run_id="r", task_id="batch.wait", map_index=3)
    state = {"value": "deferred"}
    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", lambda **kw: {"r": {"batch.wait_3": state["value"]}})
    asyncio.run(trigger.on_kill())  # handed to another triggerer, or the triggerer stopped: the batch goes on
    assert client_for(emu).batches.retrieve(batch_id).status == "in_progress"
    state["value"] = "failed"  # marked failed by a person
    asyncio.run(trigger.on_kill())
    assert wait(client_for(emu), batch_id).status == "cancelled"


def test_sensor_outcomes(conn, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

    from openai_batch.sensors import OpenAIBatchSensor

    emu = conn("--validation-seconds", "0")
    client = client_for(emu)
    done = submit(emu, tmp_path)
    wait(client, done)
    sensor = OpenAIBatchSensor(task_id="wait", batch_id=done, conn_id="openai_test")
    assert sensor.execute({})["status"] == "completed"  # already terminal: no deferral needed
    assert sensor.execute_complete({}, {"status": "expired", "batch_id": done})["status"] == "expired"

    bad = client.batches.create(
        input_file_id=upload(client, tmp_path, [chat_line("a"), chat_line("a")], "dup.jsonl"),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    ).id
    wait(client, bad)
    with pytest.raises(AirflowFailException, match=r"line 2: duplicate_custom_id"):
        OpenAIBatchSensor(task_id="wait", batch_id=bad, conn_id="openai_test").execute({})

    live = submit(conn("--stuck-rate", "1"), tmp_path)
    sensor = OpenAIBatchSensor(task_id="wait", batch_id=live, conn_id="openai_test")
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute_complete({}, {"status": "timeout", "batch_id": live})
    assert sensor.hook.get_batch(live).status in ("cancelling", "cancelled")


def test_sensor_default_deadline_covers_the_completion_window():
    from openai_batch.sensors import OpenAIBatchSensor

    assert OpenAIBatchSensor(task_id="w", batch_id="b").timeout == 25 * 3600
