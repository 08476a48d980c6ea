"""The emulator's Azure OpenAI routes (/openai/v1) over real HTTP with the official openai SDK, as AzureOpenAI
(``api-key`` header) and as OpenAI with the v1 base URL (bearer key): OpenAI's shape, deployment names as models,
Azure's request limit, no expiry, and the queue-full failure."""

import openai
import pytest

from tests.emulator_client import chat_line, jsonl, upload, wait

KEY = "azure-emulator-key-0123456789"
DEPLOYMENT = "gpt-4o-mini-global-batch"


def azure(emu, api_key: str = KEY) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(base_url=f"{emu.url}/openai/v1", api_key=api_key, api_version="preview")


def v1(emu, api_key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{emu.url}/openai/v1/", api_key=api_key)


def submit(client: openai.OpenAI, tmp_path, lines: list[dict]) -> str:
    file_id = upload(client, tmp_path, lines)
    return client.batches.create(input_file_id=file_id, endpoint="/chat/completions", completion_window="24h").id


def line(custom_id: str, text: str = "hi", model: str = DEPLOYMENT, url: str = "/chat/completions") -> dict:
    return chat_line(custom_id, text, model, url)


@pytest.mark.parametrize("make_client", [azure, v1], ids=["AzureOpenAI", "OpenAI-v1"])
def test_files_batches_and_output(emulator, tmp_path, make_client):
    emu = emulator(env={"BATCHKIT_EMULATOR_API_KEY": KEY})
    client = make_client(emu)
    lines = [line(f"r{i}", f"hello {i}") for i in range(20)] + [line("v", url="/v1/chat/completions")]
    batch = client.batches.create(
        input_file_id=upload(client, tmp_path, lines), endpoint="/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating" and batch.expires_at is None  # Azure does not expire batches
    done = wait(client, batch.id)
    assert done.status == "completed" and done.model == DEPLOYMENT and done.request_counts.completed == 21
    out = {row["custom_id"]: row for row in jsonl(client, done.output_file_id)}
    body = out["r3"]["response"]["body"]
    assert body["model"] == DEPLOYMENT and body["choices"][0]["message"]["content"] == "echo: hello 3"
    assert client.files.retrieve(done.output_file_id).purpose == "batch_output"
    assert [b.id for b in client.batches.list().data] == [batch.id]
    assert client.files.list().data  # the input and the output

    openai_client = openai.OpenAI(base_url=emu.base_url, api_key=KEY)  # OpenAI's API sees none of it
    assert openai_client.batches.list().data == [] and openai_client.files.list().data == []
    with pytest.raises(openai.NotFoundError):
        openai_client.batches.retrieve(batch.id)


def test_auth_by_api_key_header(emulator):
    emu = emulator(env={"BATCHKIT_EMULATOR_API_KEY": KEY})
    for client in (azure(emu, "wrong"), v1(emu, "wrong")):
        with pytest.raises(openai.AuthenticationError, match="api-key"):
            client.batches.list()
    assert azure(emu).batches.list().data == []


def test_deployments_and_limits_follow_azure(emulator, tmp_path):
    emu = emulator("--azure-deployments", f"{DEPLOYMENT},other", "--max-requests", "3", "--azure-max-requests", "5")
    client = azure(emu, "any")  # no key configured: any key is accepted, as for OpenAI

    def run(lines: list[dict]):
        return wait(client, submit(client, tmp_path, lines))

    assert run([line(f"r{i}") for i in range(5)]).status == "completed"  # past OpenAI's 3, within Azure's 5
    too_many = run([line(f"r{i}") for i in range(6)])
    assert too_many.status == "failed" and too_many.errors.data[0].code == "too_many_requests"
    unknown = run([line("a", model="not-deployed")])
    assert unknown.status == "failed" and unknown.errors.data[0].code == "model_not_found"


def test_no_expiry_but_the_expire_fault_and_queue_full(emulator, tmp_path):
    client = azure(emulator("--seconds-per-request", "0.01", "--completion-window-seconds", "1"), "any")
    file_id = upload(client, tmp_path, [line(f"r{i}") for i in range(200)])
    batch = client.batches.create(input_file_id=file_id, endpoint="/chat/completions", completion_window="24h")
    done = wait(client, batch.id)
    assert done.status == "completed" and done.request_counts.completed == 200  # ran past the 1 s window

    client = azure(emulator("--expire-rate", "1", "--seconds-per-request", "0.01"), "any")
    done = wait(client, submit(client, tmp_path, [line(f"r{i}") for i in range(20)]))
    counts = done.request_counts
    assert done.status == "expired" and 10 <= counts.completed < 20 and counts.completed + counts.failed == 20
    assert {row["error"]["code"] for row in jsonl(client, done.error_file_id)} == {"batch_expired"}

    client = azure(emulator("--enqueued-token-limit", "300", "--stuck-rate", "1"), "any")
    lines = [line(f"r{i}", "x" * 100) for i in range(3)]
    wait(client, submit(client, tmp_path, lines), until=("in_progress",))
    refused = wait(client, submit(client, tmp_path, lines))
    assert refused.status == "failed" and refused.errors.data[0].code == "token_limit_exceeded"
