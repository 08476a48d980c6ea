"""The official openai SDK driving an emulator over real HTTP: the calls tests repeat."""

import json
import time
from collections.abc import Collection
from pathlib import Path

from openai import OpenAI

from batchkit.batch_api import TERMINAL
from batchkit.emulator.launcher import EmulatorProcess

FAST = ("--validation-seconds", "0", "--tick-seconds", "0.05")


def client_for(emu: EmulatorProcess, api_key: str = "unused", **kw) -> OpenAI:
    return OpenAI(base_url=emu.base_url, api_key=api_key, **kw)


def chat_line(custom_id: str, text: str = "hi", model: str = "gpt-4o-mini", url: str = "/v1/chat/completions") -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {"model": model, "messages": [{"role": "user", "content": text}]},
    }


def upload(client: OpenAI, tmp_path: Path, lines: list[dict] | bytes, name: str = "in.jsonl") -> str:
    path = tmp_path / name
    path.write_bytes(lines if isinstance(lines, bytes) else b"".join(json.dumps(x).encode() + b"\n" for x in lines))
    with path.open("rb") as handle:
        return client.files.create(file=handle, purpose="batch").id


def wait(client: OpenAI, batch_id: str, timeout: float = 60, until: Collection[str] = TERMINAL):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if not seen or seen[-1] != batch.status:
            seen.append(batch.status)
        if batch.status in until:
            batch.seen_statuses = seen
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} still {seen[-1]} after {timeout}s (saw {seen})")


def jsonl(client: OpenAI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).content.splitlines() if line.strip()]


def submit_batch(emu: EmulatorProcess, tmp_path: Path, lines: int = 3, metadata: dict | None = None) -> str:
    """A new chat-completions batch of ``lines`` requests on ``emu`` (with ``metadata``); returns its id."""
    client = client_for(emu)
    file_id = upload(client, tmp_path, [chat_line(f"r{i}") for i in range(lines)])
    return client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", metadata=metadata
    ).id
