"""The Batches endpoints: create (checked as OpenAI checks it), retrieve, list, cancel; under /v1 for OpenAI and
/openai/v1 for Azure OpenAI (``vendors.Vendor`` holds what differs)."""

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request

from ..batch_api import CANCELLABLE, BatchStatus
from .checks import COMPLETION_WINDOWS, check_metadata, json_body, page
from .config import EmulatorConfig
from .errors import APIError
from .lifetimes import check_expiry
from .processor import Processor
from .store import Store, new_id
from .vendors import OPENAI_API, Vendor


def batches_router(
    store: Store, config: EmulatorConfig, processor: Processor, vendor: Vendor = OPENAI_API
) -> APIRouter:
    router = APIRouter(prefix=vendor.prefix, include_in_schema=vendor is OPENAI_API)

    @router.post("/batches")
    async def create_batch(request: Request) -> dict:
        body = await json_body(request)
        if refused := processor.faults.create_refused():
            raise refused
        endpoint, window = body.get("endpoint"), body.get("completion_window")
        if endpoint not in vendor.endpoints:
            raise APIError(
                400,
                f"Invalid value for 'endpoint': {endpoint!r}. Supported: {', '.join(vendor.endpoints)}.",
                "endpoint",
                "invalid_value",
            )
        if window not in COMPLETION_WINDOWS:
            raise APIError(
                400,
                f"Invalid value for 'completion_window': {window!r}. Supported: '24h'.",
                "completion_window",
                "invalid_value",
            )
        metadata = check_metadata(body.get("metadata"))
        input_file_id = body.get("input_file_id")
        if not isinstance(input_file_id, str):
            raise APIError(400, "Missing required parameter: 'input_file_id'.", "input_file_id")
        input_file = store.get_file(input_file_id, vendor.name)
        if not input_file:
            raise APIError(404, f"No such File object: {input_file_id}", "input_file_id")
        if input_file["purpose"] != "batch":
            raise APIError(
                400,
                f"File {input_file_id} has purpose {input_file['purpose']!r}; batches need purpose 'batch'.",
                "input_file_id",
                "invalid_file_purpose",
            )
        now = int(time.time())
        batch = {
            "id": new_id("batch").replace("-", "_", 1),
            "object": "batch",
            "endpoint": endpoint,
            "model": None,
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": window,
            "status": BatchStatus.VALIDATING.value,
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": int(now + config.completion_window_seconds) if vendor.expires else None,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": metadata,
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "total_tokens": 0,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
        expiry = check_expiry(body.get("output_expires_after"))
        if expiry is not None:
            batch["output_expires_after"] = expiry
        progress = {"offset": 0, "out_bytes": 0, "err_bytes": 0, "fault": None, "created": time.time()}
        store.add_batch(batch, {**progress, "vendor": vendor.name}, vendor.name)
        processor.wake()
        if config.create_delay_seconds:
            await asyncio.sleep(config.create_delay_seconds)  # created already: a client that times out retries
        return batch

    def _batch_or_404(batch_id: str) -> dict:
        found = store.get_batch(batch_id, vendor.name)
        if not found:
            raise APIError(404, f"No such Batch object: {batch_id}", "batch_id")
        return found[0]

    @router.get("/batches/{batch_id}")
    async def get_batch(batch_id: str) -> dict:
        return _batch_or_404(batch_id)

    @router.get("/batches")
    async def list_batches(limit: Annotated[int, Query(ge=1, le=100)] = 20, after: str | None = None) -> dict:
        data, more = store.list_batches(limit, after, vendor.name)
        return page([batch for batch, _ in data], more)

    @router.post("/batches/{batch_id}/cancel")
    async def cancel_batch(batch_id: str) -> dict:
        batch = _batch_or_404(batch_id)
        if batch["status"] in (BatchStatus.CANCELLING, BatchStatus.CANCELLED):
            return batch
        if batch["status"] not in CANCELLABLE:
            raise APIError(
                409, f"Cannot cancel a batch with status '{batch['status']}'.", None, "batch_not_cancellable"
            )
        updated = store.update_batch(batch_id, status=BatchStatus.CANCELLING.value, cancelling_at=int(time.time()))
        processor.wake()
        return updated

    return router
