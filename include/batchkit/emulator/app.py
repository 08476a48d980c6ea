"""The emulator's HTTP API: OpenAI's Files, Batches and Models endpoints under /v1."""

import asyncio
import contextlib
import hmac
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import backends, openapi
from .checks import COMPLETION_WINDOWS, ENDPOINTS, PURPOSES, APIError, check_expiry, check_metadata, json_body
from .config import EmulatorConfig
from .processor import Processor
from .store import Store, new_id
from .uploads import BadUpload, UploadTooLarge, receive_upload

log = logging.getLogger("batchkit.emulator")


def create_app(config: EmulatorConfig) -> FastAPI:
    """Build the app; state persists in ``config.data_dir`` and processing resumes on start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.data_dir)
    processor = Processor(store, config)
    faults = random.Random(config.seed)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        processor.recover()
        task = asyncio.create_task(processor.run_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await processor.close()
            store.close()

    app = FastAPI(title="batchkit OpenAI Batch API emulator", lifespan=lifespan, docs_url="/docs")
    app.state.store, app.state.processor, app.state.config = store, processor, config
    openapi.install(app, config)

    @app.middleware("http")
    async def auth_and_faults(request: Request, call_next: Any) -> Any:
        if not request.url.path.startswith("/v1/"):
            return await call_next(request)
        if config.api_key:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {config.api_key}".encode()):
                return APIError(
                    401,
                    "Incorrect API key provided. Set the key the emulator was started with (--api-key).",
                    code="invalid_api_key",
                ).response()
        if config.api_error_rate and faults.random() < config.api_error_rate:
            if faults.random() < 0.5:
                error = APIError(
                    429, "Rate limit reached (injected fault).", code="rate_limit_exceeded", type_="requests"
                )
            else:
                error = APIError(
                    500, "The server had an error while processing your request (injected fault).", type_="server_error"
                )
            response = error.response()
            response.headers["retry-after-ms"] = "50"
            return response
        return await call_next(request)

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        subject = f"'{param}'" if param else "request"
        return APIError(
            400, f"Invalid {subject}: {first.get('msg', 'malformed body')}", param, "invalid_value"
        ).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return APIError(exc.status_code, str(exc.detail)).response()

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "backend": config.backend}

    # Files
    @app.post("/v1/files")
    async def upload_file(request: Request) -> dict:
        file_id = new_id("file")
        target = store.blob_path(file_id)
        try:
            fields, filename, size = await receive_upload(request, target, config.max_upload_bytes)
        except UploadTooLarge:
            target.unlink(missing_ok=True)
            raise APIError(
                413,
                f"File is too large: the maximum upload size is {config.max_upload_bytes:,} bytes.",
                "file",
                "file_too_large",
            ) from None
        except BadUpload as exc:
            target.unlink(missing_ok=True)
            raise APIError(400, str(exc), "file") from None
        purpose = fields.get("purpose")
        if purpose not in PURPOSES:
            target.unlink(missing_ok=True)
            raise APIError(400, f"Invalid value for 'purpose': {purpose!r}.", "purpose")
        stored = store.add_file(file_id, filename, purpose, size)
        if config.upload_delay_seconds:
            await asyncio.sleep(config.upload_delay_seconds)  # stored already: a client may die before the answer
        return stored

    @app.get("/v1/files")
    async def list_files(
        purpose: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
    ) -> dict:
        data, more = store.list_files(purpose, limit, after, order)
        return _page(data, more)

    def _file_or_404(file_id: str) -> dict:
        found = store.get_file(file_id)
        if not found:
            raise APIError(404, f"No such File object: {file_id}", "id")
        return found

    @app.get("/v1/files/{file_id}")
    async def get_file(file_id: str) -> dict:
        return _file_or_404(file_id)

    @app.delete("/v1/files/{file_id}")
    async def delete_file(file_id: str) -> dict:
        _file_or_404(file_id)
        store.delete_file(file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    @app.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str) -> FileResponse:
        found = _file_or_404(file_id)
        return FileResponse(store.blob_path(file_id), media_type="application/octet-stream", filename=found["filename"])

    # Batches
    @app.post("/v1/batches")
    async def create_batch(request: Request) -> dict:
        body = await json_body(request)
        if config.create_error_rate and faults.random() < config.create_error_rate:
            raise APIError(
                429,
                "Too many batch creation requests; please slow down (injected fault).",
                code="rate_limit_exceeded",
                type_="requests",
            )
        endpoint, window = body.get("endpoint"), body.get("completion_window")
        if endpoint not in ENDPOINTS:
            raise APIError(
                400,
                f"Invalid value for 'endpoint': {endpoint!r}. Supported: {', '.join(ENDPOINTS)}.",
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
        input_file = store.get_file(input_file_id)
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
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": int(now + config.completion_window_seconds),
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
        store.add_batch(batch, {"offset": 0, "out_bytes": 0, "err_bytes": 0, "fault": None, "created": time.time()})
        processor.wake()
        if config.create_delay_seconds:
            await asyncio.sleep(config.create_delay_seconds)  # created already: a client that times out retries
        return batch

    def _batch_or_404(batch_id: str) -> dict:
        found = store.get_batch(batch_id)
        if not found:
            raise APIError(404, f"No such Batch object: {batch_id}", "batch_id")
        return found[0]

    @app.get("/v1/batches/{batch_id}")
    async def get_batch(batch_id: str) -> dict:
        return _batch_or_404(batch_id)

    @app.get("/v1/batches")
    async def list_batches(limit: Annotated[int, Query(ge=1, le=100)] = 20, after: str | None = None) -> dict:
        data, more = store.list_batches(limit, after)
        return _page(data, more)

    @app.post("/v1/batches/{batch_id}/cancel")
    async def cancel_batch(batch_id: str) -> dict:
        batch = _batch_or_404(batch_id)
        if batch["status"] in ("cancelling", "cancelled"):
            return batch
        if batch["status"] not in ("validating", "in_progress", "finalizing"):
            raise APIError(
                409, f"Cannot cancel a batch with status '{batch['status']}'.", None, "batch_not_cancellable"
            )
        updated = store.update_batch(batch_id, status="cancelling", cancelling_at=int(time.time()))
        processor.wake()
        return updated

    # Models and synchronous endpoints (the echo backend answering directly, e.g. as a forward upstream)
    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"object": "list", "data": [_model(m) for m in config.models if m != "*"]}

    @app.get("/v1/models/{model_id}")
    async def get_model(model_id: str) -> dict:
        if not config.accepts_model(model_id):
            raise APIError(
                404,
                f"The model '{model_id}' does not exist or you do not have access to it.",
                "model",
                "model_not_found",
            )
        return _model(model_id)

    for path in ("/v1/chat/completions", "/v1/responses", "/v1/embeddings"):
        app.add_api_route(path, _sync_endpoint(path, config), methods=["POST"])

    return app


def _sync_endpoint(path: str, config: EmulatorConfig) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        body = await json_body(request)
        if isinstance(body.get("model"), str) and not config.accepts_model(body["model"]):
            raise APIError(
                404,
                f"The model '{body['model']}' does not exist or you do not have access to it.",
                "model",
                "model_not_found",
            )
        result = backends.echo(path, body, new_id("req"), int(time.time()), config.embedding_dimensions)
        return JSONResponse(result.body, status_code=result.status_code)

    return endpoint


def _page(data: list[dict], more: bool) -> dict:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }


def _model(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "batchkit-emulator"}
