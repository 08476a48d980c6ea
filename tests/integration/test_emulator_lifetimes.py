"""File lifetimes over real HTTP with the official openai SDK: ``files.create(expires_after=...)``,
``batches.create(output_expires_after=...)``, ``files.delete``; an expired file answers 404 everywhere, leaves the
list and the data dir. ``--file-expiry-scale 0.001`` makes the API's minimum hour last 4 seconds here."""

import json
import time

import openai
import pytest
from openai.types import FileDeleted

from tests.emulator_client import chat_line, client_for, jsonl, upload, wait

HOUR = {"anchor": "created_at", "seconds": 3600}


def gone(client: openai.OpenAI, file_id: str, timeout: float = 20) -> None:
    """Wait until ``file_id`` has expired (its retrieve answers 404)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.files.retrieve(file_id)
        except openai.NotFoundError:
            return
        time.sleep(0.2)
    raise AssertionError(f"{file_id} still there after {timeout}s")


def test_files_and_batch_outputs_expire_and_are_removed(emulator, tmp_path):
    emu = emulator("--file-expiry-scale", "0.001")
    client, files_dir = client_for(emu), emu.log_path.parent / "files"
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(chat_line(f"r{i}")) + "\n" for i in range(3)))
    with path.open("rb") as handle:
        source = client.files.create(file=handle, purpose="batch", expires_after=HOUR)
    assert source.expires_at - source.created_at == 4  # 3,600 s x 0.001, rounded up
    default = client.files.retrieve(upload(client, tmp_path, [chat_line("d")], "default.jsonl"))
    assert default.expires_at - default.created_at == 2592  # 30 days x 0.001: batch files' documented default
    with path.open("rb") as handle:
        kept = client.files.create(file=handle, purpose="user_data")
    assert kept.expires_at is None

    batch = client.batches.create(
        input_file_id=source.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        output_expires_after=HOUR,
    )
    done = wait(client, batch.id)
    assert done.status == "completed" and done.request_counts.completed == 3
    output = client.files.retrieve(done.output_file_id)
    assert output.purpose == "batch_output" and output.expires_at - output.created_at == 4  # anchored at its creation
    assert len(jsonl(client, output.id)) == 3

    deleted = client.files.delete(kept.id)
    assert isinstance(deleted, FileDeleted) and deleted.deleted and deleted.id == kept.id
    with pytest.raises(openai.NotFoundError):
        client.files.delete(kept.id)

    for file_id in (source.id, output.id):
        gone(client, file_id)
        with pytest.raises(openai.NotFoundError, match="No such File object"):
            client.files.content(file_id)
        with pytest.raises(openai.NotFoundError):
            client.files.delete(file_id)
    assert [f.id for f in client.files.list()] == [default.id]
    deadline = time.monotonic() + 5
    while {p.name for p in files_dir.iterdir()} != {default.id} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {p.name for p in files_dir.iterdir()} == {default.id}  # the expired files' bytes are gone
    assert client.batches.retrieve(batch.id).output_file_id == output.id  # the batch still names its files
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h")


def test_lifetimes_out_of_the_documented_range_are_refused(emulator, tmp_path):
    client = client_for(emulator())
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"{}\n")
    for seconds, code in ((60, "integer_below_min_value"), (31 * 24 * 3600, "integer_above_max_value")):
        with path.open("rb") as handle, pytest.raises(openai.BadRequestError) as caught:
            client.files.create(
                file=handle, purpose="batch", expires_after={"anchor": "created_at", "seconds": seconds}
            )
        assert caught.value.code == code and caught.value.param == "expires_after.seconds"
    file_id = upload(client, tmp_path, [chat_line("a")])
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(
            input_file_id=file_id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            output_expires_after={"anchor": "created_at", "seconds": 1800},
        )
    assert caught.value.param == "output_expires_after.seconds"
    with path.open("rb") as handle:
        hour = client.files.create(file=handle, purpose="batch", expires_after=HOUR)
    assert hour.expires_at - hour.created_at == 3600  # at the default scale, the asked seconds
