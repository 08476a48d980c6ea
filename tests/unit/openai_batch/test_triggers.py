"""The status trigger as the triggerer runs it (serialised, rebuilt, polled, killed), against real emulator
processes (how it polls: test_polling.py)."""

import asyncio
import contextlib
import time

import pytest

from openai_batch import triggers
from tests.emulator_client import chat_line, client_for, submit_batch, upload, wait


@pytest.fixture(autouse=True)
def no_settling(monkeypatch):
    """The triggers here fire as soon as they know (test_the_first_event_waits_for_the_deferral_to_settle
    sets its own)."""
    monkeypatch.setattr(triggers, "SETTLE_SECONDS", 0.0)


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

    batch_id = submit_batch(conn("--seconds-per-request", "0.05"), tmp_path)
    event = first_event(OpenAIBatchStatusTrigger(batch_id, "openai_test", poll_interval=0.1, deadline=time.time() + 60))
    assert event["status"] == "completed" and event["batch_id"] == batch_id
    assert event["request_counts"] == {"total": 3, "completed": 3, "failed": 0}


def test_the_first_event_waits_for_the_deferral_to_settle(conn, tmp_path, monkeypatch):
    """A batch that is over before the scheduler can have drained the deferral's executor event: the event
    comes SETTLE_SECONDS after the trigger started, not at the first poll (apache/airflow#72716)."""
    from openai_batch.triggers import OpenAIBatchStatusTrigger

    emu = conn("--seconds-per-request", "0.01")
    batch_id = submit_batch(emu, tmp_path)
    wait(client_for(emu), batch_id)  # over before the trigger starts
    monkeypatch.setattr(triggers, "SETTLE_SECONDS", 3.0)
    started = time.monotonic()
    event = first_event(OpenAIBatchStatusTrigger(batch_id, "openai_test", poll_interval=0.1))
    assert event["status"] == "completed" and time.monotonic() - started >= 3.0


def test_a_trigger_stored_by_an_earlier_version_still_rebuilds_with_the_defaults():
    from airflow.sdk.module_loading import import_string

    from openai_batch.triggers import OpenAIBatchStatusTrigger

    stored = {"batch_id": "batch_1", "conn_id": "openai_default", "poll_interval": 60, "deadline": None}
    rebuilt = import_string("openai_batch.triggers.OpenAIBatchStatusTrigger")(**stored)
    assert isinstance(rebuilt, OpenAIBatchStatusTrigger)
    assert rebuilt.serialize()[1] == {**stored, "cancel_on_kill": True, "max_poll_interval": 600}


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

    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates

    from openai_batch.triggers import OpenAIBatchStatusTrigger

    emu = conn("--stuck-rate", "1")
    batch_id = submit_batch(emu, tmp_path)
    trigger = OpenAIBatchStatusTrigger(batch_id, "openai_test", poll_interval=0.1, deadline=time.time() + 1.5)
    started = time.monotonic()
    assert first_event(trigger)["status"] == "timeout"
    assert 1.0 < time.monotonic() - started < 10

    # The triggerer asks Airflow's execution API for the task's state; here its answer is given directly.
    trigger.task_instance = SimpleNamespace(dag_id="d", run_id="r", task_id="batch.wait", map_index=3)
    state = {"value": "deferred"}
    asked = []

    async def asend(message):  # the triggerer's channel to its supervisor, which asks the execution API
        if not isinstance(message, GetTaskStates):
            return None  # e.g. secrets to mask in logs
        asked.append(message)
        return SimpleNamespace(task_states={"r": {"batch.wait_3": state["value"]}})

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", SimpleNamespace(asend=asend), raising=False)
    asyncio.run(trigger.on_kill())  # handed to another triggerer, or the triggerer stopped: the batch goes on
    assert client_for(emu).batches.retrieve(batch_id).status == "in_progress"
    state["value"] = "failed"  # marked failed by a person
    asyncio.run(trigger.on_kill())
    assert wait(client_for(emu), batch_id).status == "cancelled"
    assert {(m.dag_id, tuple(m.task_ids), tuple(m.run_ids), m.map_index) for m in asked} == {
        ("d", ("batch.wait",), ("r",), 3)
    }


def test_on_kill_finishes_even_when_airflow_cancels_it_again(conn, tmp_path, monkeypatch):
    """Airflow 3.3 cancels a trigger again on each loop while its on_kill runs; the decision must survive."""
    from types import SimpleNamespace

    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates

    from openai_batch.triggers import OpenAIBatchStatusTrigger

    emu = conn("--stuck-rate", "1")
    batch_id = submit_batch(emu, tmp_path)
    trigger = OpenAIBatchStatusTrigger(batch_id, "openai_test", poll_interval=0.1)
    trigger.task_instance = SimpleNamespace(dag_id="d", run_id="r", task_id="batch.submit", map_index=0)

    async def slow_asend(message):
        if not isinstance(message, GetTaskStates):
            return None
        await asyncio.sleep(0.5)  # a slow answer from the supervisor
        return SimpleNamespace(task_states={"r": {"batch.submit_0": "failed"}})

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", SimpleNamespace(asend=slow_asend), raising=False)

    async def kill_and_cancel_again():
        killing = asyncio.ensure_future(trigger.on_kill())
        await asyncio.sleep(0.1)
        killing.cancel()  # the triggerer's next loop
        with contextlib.suppress(asyncio.CancelledError):
            await killing
        await asyncio.sleep(2)  # the loop goes on running other triggers

    asyncio.run(kill_and_cancel_again())
    assert wait(client_for(emu), batch_id).status == "cancelled"


def test_a_state_request_the_channel_dropped_is_asked_again(conn, tmp_path, monkeypatch):
    """Airflow's channel cancels its pending requests when its reader stops: that read is retried, not fatal."""
    from types import SimpleNamespace

    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates

    from openai_batch.triggers import OpenAIBatchStatusTrigger

    emu = conn("--stuck-rate", "1")
    batch_id = submit_batch(emu, tmp_path)
    trigger = OpenAIBatchStatusTrigger(batch_id, "openai_test", poll_interval=0.1)
    trigger.task_instance = SimpleNamespace(dag_id="d", run_id="r", task_id="batch.submit", map_index=-1)
    asked = []

    async def dropping_asend(message):
        if not isinstance(message, GetTaskStates):
            return None
        asked.append(message)
        if len(asked) == 1:
            raise asyncio.CancelledError("Reader loop exited")
        return SimpleNamespace(task_states={"r": {"batch.submit": "failed"}})

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", SimpleNamespace(asend=dropping_asend), raising=False)
    asyncio.run(trigger.on_kill())
    assert len(asked) == 2
    assert wait(client_for(emu), batch_id).status == "cancelled"
