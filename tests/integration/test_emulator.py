"""The emulator over real HTTP with the official openai SDK: lifecycle, files, pagination, cancel, auth, backends."""

import collections
import json
import time

import httpx
import jsonschema
import openai
import psutil
import pytest

from batchkit.sentiment import SENTIMENT_SCHEMA
from tests.emulator_client import chat_line, client_for, jsonl, submit_batch, upload, wait


def test_chat_batch_lifecycle(emulator, tmp_path):
    emu = emulator("--seconds-per-request", "0.002", "--validation-seconds", "0.3")
    client = client_for(emu)
    file_id = upload(client, tmp_path, [chat_line(f"r{i}", f"hello {i} 🎉 مرحبا") for i in range(300)])
    batch = client.batches.create(
        input_file_id=file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"dag_id": "d", "run": "1"},
    )
    assert batch.status == "validating" and batch.metadata == {"dag_id": "d", "run": "1"}
    done = wait(client, batch.id)
    assert done.seen_statuses[0] == "validating" and "in_progress" in done.seen_statuses
    assert done.status == "completed" and done.model == "gpt-4o-mini"
    assert done.request_counts.total == 300 and done.request_counts.completed == 300 and done.request_counts.failed == 0
    assert done.created_at <= done.in_progress_at <= done.finalizing_at <= done.completed_at < done.expires_at
    assert done.error_file_id is None and done.errors is None
    out = jsonl(client, done.output_file_id)
    assert sorted(line["custom_id"] for line in out) == sorted(f"r{i}" for i in range(300))
    first = next(line for line in out if line["custom_id"] == "r7")
    assert first["response"]["status_code"] == 200 and first["error"] is None
    assert first["response"]["body"]["choices"][0]["message"]["content"] == "echo: hello 7 🎉 مرحبا"
    assert done.usage.input_tokens > 0 and done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens
    output_file = client.files.retrieve(done.output_file_id)
    assert output_file.purpose == "batch_output" and output_file.bytes == len(
        client.files.content(done.output_file_id).content
    )


def test_responses_and_embeddings(emulator, tmp_path):
    client = client_for(emulator())
    responses = [
        {
            "custom_id": "a",
            "method": "POST",
            "url": "/v1/responses",
            "body": {"model": "gpt-4o-mini", "input": "x", "instructions": "be short"},
        }
    ]
    batch = client.batches.create(
        input_file_id=upload(client, tmp_path, responses, "r.jsonl"), endpoint="/v1/responses", completion_window="24h"
    )
    body = jsonl(client, wait(client, batch.id).output_file_id)[0]["response"]["body"]
    assert body["object"] == "response" and body["output"][0]["content"][0]["text"] == "echo: x"
    embeddings = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": f"text {i}", "dimensions": 8},
        }
        for i in range(3)
    ]
    batch = client.batches.create(
        input_file_id=upload(client, tmp_path, embeddings, "e.jsonl"),
        endpoint="/v1/embeddings",
        completion_window="24h",
    )
    out = jsonl(client, wait(client, batch.id).output_file_id)
    vectors = {line["custom_id"]: line["response"]["body"]["data"][0]["embedding"] for line in out}
    assert len(vectors["e0"]) == 8 and vectors["e0"] != vectors["e1"]
    assert abs(sum(v * v for v in vectors["e0"]) - 1) < 1e-3


def test_batch_pagination_newest_first(emulator, tmp_path):
    client = client_for(emulator())
    file_id = upload(client, tmp_path, [chat_line("a")])
    ids = [
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h").id
        for _ in range(5)
    ]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    page2 = client.batches.list(limit=2, after=page.data[-1].id)
    assert [b.id for b in page2.data] == ids[::-1][2:4]
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]  # the SDK follows the cursor
    for bad in (0, 101):
        with pytest.raises(openai.BadRequestError, match="limit"):
            client.batches.list(limit=bad)
    files = client.files.list(purpose="batch")
    assert [f.id for f in files.data] == [file_id]


def test_cancel_keeps_partial_output_and_accounts_every_line(emulator, tmp_path):
    emu = emulator("--seconds-per-request", "0.01")
    client = client_for(emu)
    batch_id = submit_batch(emu, tmp_path, 400)
    wait(client, batch_id, until=("in_progress",))
    while client.batches.retrieve(batch_id).request_counts.completed == 0:
        time.sleep(0.05)
    cancelling = client.batches.cancel(batch_id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    done = wait(client, batch_id)
    assert done.status == "cancelled" and done.cancelled_at
    out, err = jsonl(client, done.output_file_id), jsonl(client, done.error_file_id)
    assert 0 < len(out) < 400 and len(out) + len(err) == 400
    assert {line["error"]["code"] for line in err} == {"batch_cancelled"}
    assert done.request_counts.completed == len(out) and done.request_counts.failed == len(err)
    with pytest.raises(openai.ConflictError, match="Cannot cancel a batch with status 'completed'"):
        client.batches.cancel(
            wait(
                client,
                client.batches.create(
                    input_file_id=upload(client, tmp_path, [chat_line("x")], "one.jsonl"),
                    endpoint="/v1/chat/completions",
                    completion_window="24h",
                ).id,
            ).id
        )


def test_files_api_and_path_safety(emulator, tmp_path):
    emu = emulator("--max-upload-bytes", "1KB")
    client = client_for(emu)
    file_id = upload(client, tmp_path, [chat_line("a")])
    assert client.files.retrieve(file_id).filename == "in.jsonl"
    with pytest.raises(openai.APIStatusError) as caught:
        upload(client, tmp_path, [chat_line("b", "y" * 2000)], "big.jsonl")
    assert caught.value.status_code == 413 and caught.value.code == "file_too_large"
    data_dir = emu.log_path.parent
    assert sorted(p.name for p in (data_dir / "files").iterdir()) == [file_id]
    for hostile in ("..%2F..%2Femulator.sqlite3", "..%2Femulator.log", "file-..%2F..%2Fx"):
        response = httpx.get(f"{emu.base_url}/files/{hostile}/content")
        assert response.status_code == 404 and "error" in response.json()
    assert client.files.delete(file_id).deleted
    assert list((data_dir / "files").iterdir()) == []
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file_id)


def test_auth_required_and_key_never_logged(emulator, tmp_path):
    secret = "sk-emulator-test-0123456789abcdef"
    emu = emulator(env={"BATCHKIT_EMULATOR_API_KEY": secret})
    with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
        client_for(emu, "wrong").files.list()
    client = client_for(emu, secret)
    batch = client.batches.create(
        input_file_id=upload(client, tmp_path, [chat_line("a")]),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    assert wait(client, batch.id).status == "completed"
    assert httpx.get(emu.base_url.removesuffix("/v1") + "/health").status_code == 200
    emu.stop()
    assert secret not in emu.log_path.read_text()


def test_a_key_file_keeps_the_key_out_of_the_process_list(emulator, tmp_path):
    secret = "sk-emulator-file-0123456789abcdef"
    (tmp_path / "key").write_text(secret + "\n")
    emu = emulator("--api-key-file", str(tmp_path / "key"))
    with pytest.raises(openai.AuthenticationError):
        client_for(emu, "wrong").files.list()
    assert client_for(emu, secret).files.list().data == []
    assert not any(secret in " ".join(p.cmdline()) for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"])


def test_forward_backend_calls_the_upstream(emulator, tmp_path):
    upstream = emulator()
    emu = emulator("--backend", "forward", "--upstream-url", upstream.base_url, "--upstream-concurrency", "4")
    client = client_for(emu)
    batch = client.batches.create(
        input_file_id=upload(
            client,
            tmp_path,
            [chat_line(f"r{i}", f"q{i}") for i in range(20)] + [chat_line("bad", model="gpt-imaginary")],
        ),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    done = wait(client, batch.id)
    assert done.status == "failed"  # the unknown model fails validation before anything is forwarded
    batch = client.batches.create(
        input_file_id=upload(client, tmp_path, [chat_line(f"r{i}", f"q{i}") for i in range(20)]),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    out = jsonl(client, wait(client, batch.id).output_file_id)
    assert {line["response"]["body"]["choices"][0]["message"]["content"] for line in out} == {
        f"echo: q{i}" for i in range(20)
    }
    assert all(line["response"]["body"]["id"].startswith("chatcmpl-") for line in out)


def test_structured_answers_validate_and_invalid_ones_are_injected(emulator, tmp_path):
    schema = SENTIMENT_SCHEMA
    response_format = {"type": "json_schema", "json_schema": {"name": "sentiment", "schema": schema, "strict": True}}
    lines = [chat_line(f"r{i}", f"review {i}") for i in range(200)]
    for line in lines:
        line["body"]["response_format"] = response_format
    client = client_for(emulator("--invalid-output-rate", "0.3", "--seed", "7"))
    batch = client.batches.create(
        input_file_id=upload(client, tmp_path, lines), endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = wait(client, batch.id)
    assert done.status == "completed" and done.request_counts.completed == 200 and done.error_file_id is None
    kinds = collections.Counter()
    for line in jsonl(client, done.output_file_id):
        assert line["response"]["status_code"] == 200
        choice = line["response"]["body"]["choices"][0]
        content = choice["message"]["content"]
        if content is None:
            assert choice["message"]["refusal"] and choice["finish_reason"] == "stop"
            kinds["refusal"] += 1
        elif choice["finish_reason"] == "length":
            with pytest.raises(json.JSONDecodeError):
                json.loads(content)
            kinds["truncated"] += 1
        else:
            try:
                jsonschema.validate(json.loads(content), schema)
                kinds["valid"] += 1
            except jsonschema.ValidationError:
                kinds["mismatch"] += 1
    invalid = 200 - kinds["valid"]
    assert 30 <= invalid <= 90 and {"refusal", "truncated", "mismatch"} <= set(kinds), kinds
