"""What a batch writes, in its vendor's shape: one record per request (OpenAI's and Azure's output and error file
lines; Anthropic's results lines, ``result.type`` succeeded / errored / expired / canceled), and the finished
files (Anthropic's one results file in no particular order, as the real one promises none)."""

import hashlib
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from .errors import anthropic_body
from .lines import LineResult
from .store import Store, new_id
from .vendors import ANTHROPIC

EXPIRED = ("batch_expired", "This request could not be executed before the completion window expired.")
CANCELLED = ("batch_cancelled", "This request was not executed because the batch was cancelled.")


def key(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode()).hexdigest()[:24]


def answered(vendor: str, batch_id: str, custom_id: str, result: LineResult) -> bytes:
    """The record of a request that ran (an answer, or an error answer)."""
    ok = result.status_code == 200
    if vendor == ANTHROPIC:
        outcome = {"type": "succeeded", "message": result.body} if ok else {"type": "errored", "error": _error(result)}
        return orjson.dumps({"custom_id": custom_id, "result": outcome})
    return orjson.dumps(
        {
            "id": f"batch_req_{key(batch_id, custom_id)}",
            "custom_id": custom_id,
            "response": {
                "status_code": result.status_code,
                "request_id": f"req_{key(batch_id, custom_id, 'r')}",
                "body": result.body,
            },
            "error": None,
        }
    )


def unanswered(vendor: str, batch_id: str, custom_id: str, reason: tuple[str, str]) -> bytes:
    """The record of a request the batch never ran: ``reason`` is EXPIRED or CANCELLED."""
    if vendor == ANTHROPIC:
        return orjson.dumps(
            {"custom_id": custom_id, "result": {"type": "expired" if reason == EXPIRED else "canceled"}}
        )
    code, message = reason
    return orjson.dumps(
        {
            "id": f"batch_req_{key(batch_id, custom_id)}",
            "custom_id": custom_id,
            "response": None,
            "error": {"code": code, "message": message},
        }
    )


def _error(result: LineResult) -> dict[str, Any]:
    """An error answer as Anthropic's ``ErrorResponse`` (kept when an upstream sent one already)."""
    body = result.body if isinstance(result.body, dict) else {}
    if body.get("type") == "error" and isinstance(body.get("error"), dict):
        return body
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return anthropic_body(result.status_code, str(error.get("message") or "The request failed."), error.get("type"))


def add_usage(total: dict, usage: dict) -> None:
    given_in = usage.get("input_tokens", usage.get("prompt_tokens", 0)) or 0
    given_out = usage.get("output_tokens", usage.get("completion_tokens", 0)) or 0
    total["input_tokens"] += given_in
    total["output_tokens"] += given_out
    total["total_tokens"] += given_in + given_out


def publish(
    store: Store,
    work_path: Callable[[str, str], Path],
    batch: dict,
    progress: dict,
    vendor: str,
    lifetime: int | None = None,
) -> None:
    """Turn the batch's committed work files into files: ``output_file_id`` and ``error_file_id`` (OpenAI,
    Azure; each living ``lifetime`` seconds, for ever for None), or one results file (Anthropic, kept as
    ``output_file_id``, shuffled)."""
    for kind in ("out", "err"):  # drop anything a crash left past the committed size
        path = work_path(batch["id"], kind)
        if path.exists():
            with path.open("ab") as handle:
                handle.truncate(progress[f"{kind}_bytes"])
    if vendor == ANTHROPIC:
        lines = []
        for kind in ("out", "err"):
            path = work_path(batch["id"], kind)
            if path.exists():
                lines += path.read_bytes().splitlines()
                path.unlink()
        random.Random(batch["id"]).shuffle(lines)
        file_id = new_id("file")
        with store.blob_path(file_id).open("wb") as handle:
            handle.write(b"".join(line + b"\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
            size = handle.tell()
        store.add_file(file_id, f"{batch['id']}_results.jsonl", "batch_output", size, vendor=vendor)
        batch["output_file_id"] = file_id
        return
    for kind, field, suffix in (("out", "output_file_id", "output"), ("err", "error_file_id", "error")):
        size = progress[f"{kind}_bytes"]
        path = work_path(batch["id"], kind)
        if size and path.exists():
            file_id = new_id("file")
            os.replace(path, store.blob_path(file_id))
            store.add_file(file_id, f"{batch['id']}_{suffix}.jsonl", "batch_output", size, lifetime, vendor=vendor)
            batch[field] = file_id
        else:
            path.unlink(missing_ok=True)
