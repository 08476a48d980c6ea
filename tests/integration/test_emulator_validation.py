"""What the emulator refuses as the Batch API does: bad batch creations, invalid input files (the batch fails
with line errors) and lines the API would answer 400, which never stall a batch."""

import openai
import pytest

from tests.emulator_client import chat_line, client_for, jsonl, upload, wait


@pytest.mark.parametrize(
    "payload,code,line",
    [
        (
            b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-4o-mini"}}\n'
            b"not json\n",
            "invalid_json_line",
            2,
        ),
        (
            [{"method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-4o-mini"}}],
            "missing_required_parameter",
            1,
        ),
        ([chat_line("a"), chat_line("a")], "duplicate_custom_id", 2),
        ([chat_line("a", url="/v1/embeddings")], "invalid_url", 1),
        ([chat_line("a"), chat_line("b", model="gpt-4o")], "mismatched_model", 2),
        ([chat_line(f"r{i}") for i in range(4)], "too_many_requests", None),
        ([chat_line("a", "x" * 3000)], "file_too_large", None),
        (b"\n\n", "empty_file", None),
        ([chat_line("a", model="gpt-imaginary")], "model_not_found", None),
    ],
)
def test_validation_errors_fail_the_batch(emulator, tmp_path, payload, code, line):
    client = client_for(emulator("--max-requests", "3", "--max-batch-bytes", "2KB"))
    batch = client.batches.create(
        input_file_id=upload(client, tmp_path, payload), endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = wait(client, batch.id)
    assert done.status == "failed" and done.failed_at and done.output_file_id is None
    errors = done.errors.data
    assert code in [e.code for e in errors]
    assert next(e for e in errors if e.code == code).line == line


def test_create_batch_rejections(emulator, tmp_path):
    client = client_for(emulator())
    file_id = upload(client, tmp_path, [chat_line("a")])
    create = client.batches.create
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        create(input_file_id=file_id, endpoint="/v1/images", completion_window="24h")
    with pytest.raises(openai.BadRequestError, match="completion_window"):
        create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="48h")
    with pytest.raises(openai.BadRequestError, match="too many properties"):
        create(
            input_file_id=file_id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={f"k{i}": "v" for i in range(17)},
        )
    with pytest.raises(openai.NotFoundError, match="No such File object"):
        create(input_file_id="file-doesnotexist00", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.NotFoundError) as caught:
        client.batches.retrieve("batch_nope")
    assert caught.value.body == {
        "message": "No such Batch object: batch_nope",
        "type": "invalid_request_error",
        "param": "batch_id",
        "code": None,
    }


def test_lines_the_api_would_refuse_get_a_400_and_never_stall_the_batch(emulator, tmp_path):
    client = client_for(emulator())
    good = chat_line("good")
    bad_chat = {**chat_line("bad-message"), "body": {"model": "gpt-4o-mini", "messages": ["not an object"]}}
    embed = {"custom_id": "", "method": "POST", "url": "/v1/embeddings"}
    lines = [
        good,
        bad_chat,
        {**embed, "custom_id": "input-5", "body": {"model": "text-embedding-3-small", "input": 5}},
        {**embed, "custom_id": "dims-neg", "body": {"model": "text-embedding-3-small", "input": "a", "dimensions": -1}},
        {
            **embed,
            "custom_id": "dims-huge",
            "body": {"model": "text-embedding-3-small", "input": "a", "dimensions": 2_000_000},
        },
    ]
    for url, chunk in (("/v1/chat/completions", lines[:2]), ("/v1/embeddings", lines[2:])):
        file_id = upload(client, tmp_path, chunk, name=f"{url.rsplit('/', 1)[-1]}.jsonl")
        batch = client.batches.create(input_file_id=file_id, endpoint=url, completion_window="24h")
        done = wait(client, batch.id, timeout=30)
        assert done.status == "completed", done
        errors = {e["custom_id"]: e["response"] for e in jsonl(client, done.error_file_id)}
        assert all(
            r["status_code"] == 400 and r["body"]["error"]["type"] == "invalid_request_error" for r in errors.values()
        )
        expected = {"bad-message"} if url == "/v1/chat/completions" else {"input-5", "dims-neg", "dims-huge"}
        assert set(errors) == expected
        assert done.request_counts.failed == len(expected) and done.request_counts.completed == len(chunk) - len(
            expected
        )


def test_a_client_that_disconnects_mid_upload_leaves_nothing_behind(emulator, tmp_path):
    import socket
    import time

    emu = emulator(data_dir=tmp_path / "emu")
    boundary = "cutshort"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n\r\n'
    ).encode()
    with socket.create_connection(("127.0.0.1", emu.port)) as sock:
        sock.sendall(
            f"POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {10_000_000}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
            + head
            + b'{"custom_id": "a"}\n' * 50_000  # about 1 MB of the promised 10 MB, then the client is gone
        )
        time.sleep(0.5)
    client = client_for(emu)
    deadline = time.monotonic() + 10
    while any((tmp_path / "emu" / "files").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any((tmp_path / "emu" / "files").iterdir()), "a cut-short upload left its partial blob"
    assert client.files.list().data == []
    assert "Traceback" not in emu.log_path.read_text()


def test_no_auth_on_a_reachable_address_is_allowed_on_purpose_and_warned_about(emulator, tmp_path):
    emu = emulator("--host", "0.0.0.0", "--no-auth", data_dir=tmp_path / "open")
    assert client_for(emu).files.list().data == []  # served without a key, as asked
    assert "batchkit: warning: the emulator listens on 0.0.0.0; it is a test server" in emu.log_path.read_text()
