"""The emulator's HTTP API: OpenAI's Files, Batches and Models endpoints under /v1, the same Files and Batches
for Azure OpenAI under /openai/v1, and Anthropic's Message Batches under /v1/messages/batches (``vendors``)."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from . import openapi, vendors
from .anthropic import anthropic_router
from .batches import batches_router
from .config import EmulatorConfig
from .errors import APIError
from .files import files_router
from .models import models_router
from .processor import Processor
from .store import Store

log = logging.getLogger("batchkit.emulator")


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods of every route whose path matches the request's (a 405's ``Allow`` header)."""
    methods: set[str] = set()
    for route in app.routes:
        if route.matches(request.scope)[0] is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def create_app(config: EmulatorConfig) -> FastAPI:
    """Build the app; state persists in ``config.data_dir`` and processing resumes on start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.data_dir)
    processor = Processor(store, config)

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
        vendor = vendors.of_path(request.url.path)
        if vendor is None:
            return await call_next(request)
        if refused := vendors.auth_error(vendor, request.headers, config.api_key):
            return vendors.error_response(vendor, refused)
        if error := processor.faults.api_error():
            response = vendors.error_response(vendor, error)
            response.headers["retry-after-ms"] = "50"
            return response
        return await call_next(request)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return vendors.error_response(vendors.of_path(request.url.path), exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        subject = f"'{param}'" if param else "request"
        error = APIError(400, f"Invalid {subject}: {first.get('msg', 'malformed body')}", param, "invalid_value")
        return vendors.error_response(vendors.of_path(request.url.path), error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = APIError(exc.status_code, str(exc.detail))
        response = vendors.error_response(vendors.of_path(request.url.path), error)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # Starlette's Allow names only the first route of the path (RFC 9110: all)
            response.headers["allow"] = ", ".join(allowed_methods(app, request))
        return response

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "backend": config.backend}

    app.include_router(anthropic_router(store, config, processor))
    app.include_router(files_router(store, config))
    app.include_router(batches_router(store, config, processor))
    app.include_router(models_router(config))
    app.include_router(files_router(store, config, vendors.AZURE_API))
    app.include_router(batches_router(store, config, processor, vendors.AZURE_API))
    return app
