"""The deferrable sensor's decisions on each batch outcome and trigger event, against real emulator processes."""

import pytest

from tests.emulator_client import chat_line, client_for, submit_batch, upload, wait


def test_sensor_outcomes(conn, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, TaskDeferred

    from openai_batch.sensors import OpenAIBatchSensor

    emu = conn("--validation-seconds", "0")
    client = client_for(emu)
    done = submit_batch(emu, tmp_path)
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

    live = submit_batch(conn("--stuck-rate", "1"), tmp_path)
    sensor = OpenAIBatchSensor(task_id="wait", batch_id=live, conn_id="openai_test")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    created = sensor.hook.get_batch(live).created_at
    assert deferred.value.trigger.deadline == created + 25 * 3600, "anchored on the batch, not on this deferral"
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute_complete({}, {"status": "timeout", "batch_id": live})
    assert sensor.hook.get_batch(live).status in ("cancelling", "cancelled")


def test_sensor_default_deadline_covers_the_completion_window():
    from openai_batch.sensors import OpenAIBatchSensor

    assert OpenAIBatchSensor(task_id="w", batch_id="b").timeout == 25 * 3600
