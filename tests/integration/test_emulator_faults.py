"""The emulator under injected faults and crashes, through the official openai SDK: failed lines, API errors,
expiry, stuck batches, restarts and deleted inputs; nothing is lost or stalls."""

import os
import signal
import time

import httpx
import pytest

from tests.emulator_client import chat_line, client_for, jsonl, submit_batch, upload, wait


def test_line_failures_go_to_the_error_file(emulator, tmp_path):
    emu = emulator("--line-failure-rate", "0.3", "--seed", "3")
    client = client_for(emu)
    batch_id = submit_batch(emu, tmp_path, 200)
    done = wait(client, batch_id)
    out, err = jsonl(client, done.output_file_id), jsonl(client, done.error_file_id)
    assert done.status == "completed" and len(out) + len(err) == 200 and 30 < len(err) < 90
    assert {line["response"]["status_code"] for line in err} == {429, 500}
    assert done.request_counts.failed == len(err)


def test_api_errors_are_retried_by_the_sdk(emulator, tmp_path):
    emu = emulator("--api-error-rate", "0.3", "--seed", "5")
    statuses = [httpx.get(f"{emu.base_url}/batches").status_code for _ in range(40)]
    assert {429, 500} <= set(statuses) and 200 in statuses
    client = client_for(emu, max_retries=8)
    batch = client.batches.create(
        input_file_id=upload(client, tmp_path, [chat_line(f"r{i}") for i in range(10)]),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    assert wait(client, batch.id).status == "completed"


def test_batch_level_faults(emulator, tmp_path):
    client = client_for(emulator("--validation-failure-rate", "1"))
    batch = client.batches.create(
        input_file_id=upload(client, tmp_path, [chat_line("a")]),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    assert wait(client, batch.id).errors.data[0].code == "token_limit_exceeded"
    client = client_for(emulator("--stuck-rate", "1"))
    batch = client.batches.create(
        input_file_id=upload(client, tmp_path, [chat_line("a")]),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    wait(client, batch.id, until=("in_progress",))
    time.sleep(0.5)
    assert client.batches.retrieve(batch.id).status == "in_progress"
    client.batches.cancel(batch.id)
    assert wait(client, batch.id).status == "cancelled"


def test_expiry_writes_unfinished_lines_as_expired(emulator, tmp_path):
    emu = emulator("--seconds-per-request", "0.02", "--completion-window-seconds", "2")
    client = client_for(emu)
    batch_id = submit_batch(emu, tmp_path, 500)
    done = wait(client, batch_id)
    assert done.status == "expired" and done.expired_at >= done.expires_at
    out, err = jsonl(client, done.output_file_id), jsonl(client, done.error_file_id)
    assert len(out) > 0 and len(out) + len(err) == 500
    assert {line["error"]["code"] for line in err} == {"batch_expired"} and all(e["response"] is None for e in err)


def test_restart_loses_nothing_and_resumes(emulator, tmp_path):
    data_dir = tmp_path / "persist"
    emu = emulator("--seconds-per-request", "0.005", data_dir=data_dir)
    client = client_for(emu)
    batch_id = submit_batch(emu, tmp_path, 600)
    while client.batches.retrieve(batch_id).request_counts.completed < 100:
        time.sleep(0.05)
    os.killpg(emu.process.pid, signal.SIGKILL)  # a crash, not a clean shutdown
    emu.process.wait()
    emu2 = emulator("--seconds-per-request", "0.001", data_dir=data_dir)
    client2 = client_for(emu2)
    done = wait(client2, batch_id)
    assert done.status == "completed" and done.request_counts.completed == 600
    ids = [line["custom_id"] for line in jsonl(client2, done.output_file_id)]
    assert len(ids) == 600 and len(set(ids)) == 600
    assert client2.files.retrieve(done.input_file_id).bytes > 0


@pytest.mark.parametrize("stage", ["validating", "in_progress"])
def test_deleting_the_input_file_never_stalls_a_batch(emulator, tmp_path, stage):
    """Deleted before validation: the batch fails naming the file; deleted later: the batch still completes."""
    emu = emulator("--validation-seconds", "1" if stage == "validating" else "0", "--seconds-per-request", "0.01")
    client = client_for(emu)
    file_id = upload(client, tmp_path, [chat_line(f"r{i}") for i in range(100)])
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    wait(client, batch.id, until=(stage,))
    client.files.delete(file_id)
    done = wait(client, batch.id, timeout=30)
    if stage == "validating":
        assert done.status == "failed"
        assert [(e.code, e.param) for e in done.errors.data] == [("file_not_found", "input_file_id")]
        assert file_id in done.errors.data[0].message
    else:
        assert done.status == "completed" and done.request_counts.completed == 100
        assert len(client.files.content(done.output_file_id).text.splitlines()) == 100
    assert list((emu.log_path.parent / "work").iterdir()) == [], "the batch's link to its input is gone"
    assert "Traceback" not in emu.log_path.read_text()
