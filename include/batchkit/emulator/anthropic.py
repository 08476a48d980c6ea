"""Anthropic's Message Batches API under /v1/messages/batches: create (requests inline, checked as Anthropic checks
them), retrieve, list (newest first; ``before_id`` / ``after_id``), cancel, results (JSONL, in no particular order)
and delete; and the synchronous ``POST /v1/messages``. A batch runs on the shared processor and faults: it is kept
as the processor's record and shown as a ``message_batch`` (``render``)."""

import asyncio
import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from ..batch_api import CANCELLABLE, TERMINAL
from ..batch_api import BatchStatus as S
from . import messages
from .checks import json_body
from .config import EmulatorConfig
from .errors import APIError
from .processor import Processor
from .store import Store, new_id
from .vendors import ANTHROPIC, ANTHROPIC_API, MESSAGES_URL

QUEUE_FULL = (
    "Number of message batch requests in the processing queue exceeds your organization's limit (injected fault or "
    "--enqueued-token-limit); retry once some batches have ended."
)


def render(batch: dict, progress: dict, base_url: str) -> dict:
    """The ``message_batch`` object of a batch the processor keeps in its own (OpenAI-like) record. Like the real
    API, requests count as ``processing`` until the whole batch has ended."""
    status, counts = batch["status"], batch["request_counts"]
    ended = status in TERMINAL
    unrun = progress.get("unrun", 0)  # requests the batch never ran: expired or canceled
    return {
        "id": batch["id"],
        "type": "message_batch",
        "processing_status": "ended" if ended else "canceling" if status == S.CANCELLING else "in_progress",
        "request_counts": {
            "processing": 0 if ended else counts["total"],
            "succeeded": counts["completed"] if ended else 0,
            "errored": counts["failed"] - unrun if ended else 0,
            "canceled": unrun if status == S.CANCELLED else 0,
            "expired": unrun if status == S.EXPIRED else 0,
        },
        "ended_at": _time(batch.get(f"{status}_at")) if ended else None,
        "created_at": _time(batch["created_at"]),
        "expires_at": _time(batch["expires_at"]),
        "archived_at": None,
        "cancel_initiated_at": _time(batch.get("cancelling_at")),
        "results_url": f"{base_url}/v1/messages/batches/{batch['id']}/results" if ended else None,
    }


def _time(epoch: float | None) -> str | None:
    """RFC 3339, as Anthropic writes times."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def anthropic_router(store: Store, config: EmulatorConfig, processor: Processor) -> APIRouter:
    router = APIRouter(prefix="/v1/messages", include_in_schema=False)
    limits = ANTHROPIC_API.limits(config)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def found(batch_id: str) -> tuple[dict, dict]:
        batch = store.get_batch(batch_id, ANTHROPIC)
        if not batch:
            raise APIError(404, f"No message batch with id '{batch_id}'.")
        return batch

    @router.post("")
    async def create_message(request: Request) -> JSONResponse:
        body = await json_body(request)
        if isinstance(body.get("model"), str) and not limits.accepts_model(body["model"]):
            result = messages.model_not_found(body["model"])
        else:
            result = messages.echo(MESSAGES_URL, body, new_id("req"), int(time.time()), tier="standard")
        return JSONResponse(result.body, status_code=result.status_code)

    @router.post("/batches")
    async def create_batch(request: Request) -> dict:
        body = await json_body(request, limits.max_batch_input_bytes)
        if refused := processor.faults.create_refused():
            raise refused
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise APIError(400, "requests: Field required (an array of at least one request)")
        if len(requests) > limits.max_requests_per_batch:
            raise APIError(
                400, f"requests: a message batch may hold at most {limits.max_requests_per_batch:,} requests"
            )
        seen: set[str] = set()
        for index, item in enumerate(requests):
            messages.check_request(index, item, seen)
        batch_id = f"msgbatch_{secrets.token_hex(12)}"
        path = processor.work_path(batch_id, "in")
        tokens = await asyncio.to_thread(_write_requests, path, requests)
        limit = config.enqueued_token_limit
        enqueued = processor.enqueued_tokens(ANTHROPIC, None, batch_id)
        if processor.faults.fails_validation(batch_id) or (limit is not None and enqueued + tokens > limit):
            path.unlink(missing_ok=True)
            raise APIError(429, QUEUE_FULL, type_="rate_limit_error")
        now = int(time.time())
        batch = {
            "id": batch_id,
            "object": "message_batch",
            "endpoint": MESSAGES_URL,
            "model": None,  # a message batch mixes models: its tokens count against one queue
            "input_file_id": None,
            "status": S.IN_PROGRESS.value,
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": now,
            "expires_at": int(now + config.completion_window_seconds),
            **{f"{stage}_at": None for stage in ("finalizing", "completed", "failed", "expired", "cancelling")},
            "cancelled_at": None,
            "request_counts": {"total": len(requests), "completed": 0, "failed": 0},
            "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
        }
        progress = {"offset": 0, "out_bytes": 0, "err_bytes": 0, "created": time.time(), "vendor": ANTHROPIC}
        progress |= {"tokens": tokens, "fault": processor.faults.batch_fault(batch_id)}
        store.add_batch(batch, progress, ANTHROPIC)
        processor.wake()
        if config.create_delay_seconds:
            await asyncio.sleep(config.create_delay_seconds)  # created already: a client that times out retries
        return render(batch, progress, base(request))

    @router.get("/batches/{batch_id}")
    async def get_batch(batch_id: str, request: Request) -> dict:
        return render(*found(batch_id), base(request))

    @router.get("/batches")
    async def list_batches(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
        before_id: str | None = None,
        after_id: str | None = None,
    ) -> dict:
        rows, more = store.list_batches(limit, after_id, ANTHROPIC, before_id)
        data = [render(batch, progress, base(request)) for batch, progress in rows]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return {"data": data, "has_more": more, "first_id": first, "last_id": last}

    @router.post("/batches/{batch_id}/cancel")
    async def cancel_batch(batch_id: str, request: Request) -> dict:
        batch, progress = found(batch_id)
        if batch["status"] in CANCELLABLE:
            batch = store.update_batch(batch_id, status=S.CANCELLING.value, cancelling_at=int(time.time()))
            processor.wake()
        elif batch["status"] != S.CANCELLING:
            raise APIError(400, f"Message batch {batch_id} has already ended; there is nothing to cancel.")
        return render(batch, progress, base(request))

    @router.get("/batches/{batch_id}/results")
    async def results(batch_id: str) -> FileResponse:
        batch, _ = found(batch_id)
        if batch["status"] not in TERMINAL or not batch.get("output_file_id"):
            raise APIError(400, f"Message batch {batch_id} has not ended: results are ready once it has.")
        return FileResponse(store.blob_path(batch["output_file_id"]), media_type="application/x-jsonl")

    @router.delete("/batches/{batch_id}")
    async def delete_batch(batch_id: str) -> dict:
        batch, _ = found(batch_id)
        if batch["status"] not in TERMINAL:
            raise APIError(400, f"Message batch {batch_id} is still in progress: cancel it before deleting it.")
        store.delete_batch(batch_id)
        if batch.get("output_file_id"):
            store.delete_file(batch["output_file_id"])
        return {"id": batch_id, "type": "message_batch_deleted"}

    return router


def _write_requests(path: Path, requests: list[dict]) -> int:
    """Write the requests as the processor's input lines; their estimated tokens (bytes / 4, as validation
    estimates an OpenAI batch's)."""
    tokens = 0
    with path.open("wb") as handle:
        for item in requests:
            raw = orjson.dumps({"custom_id": item["custom_id"], "url": MESSAGES_URL, "body": item["params"]})
            tokens += len(raw) // 4 + 1
            handle.write(raw + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return tokens
