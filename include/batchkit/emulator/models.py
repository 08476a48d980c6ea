"""The Models endpoints, and the synchronous endpoints answered by the echo backend (e.g. as a forward upstream)."""

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..batch_api import Endpoint
from . import backends
from .checks import json_body
from .config import EmulatorConfig
from .errors import model_not_found
from .store import new_id

DEFAULT_MODERATION_MODEL = "omni-moderation-latest"


def models_router(config: EmulatorConfig) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/models")
    async def list_models() -> dict:
        return {"object": "list", "data": [_model(m) for m in config.models if m != "*"]}

    @router.get("/models/{model_id}")
    async def get_model(model_id: str, request: Request) -> dict:
        if request.headers.get("anthropic-version"):  # Anthropic's Models API shares the path
            from .vendors import ANTHROPIC_API

            if not ANTHROPIC_API.limits(config).accepts_model(model_id):
                raise model_not_found(model_id)
            return {"id": model_id, "type": "model", "display_name": model_id, "created_at": "2025-01-01T00:00:00Z"}
        if not config.accepts_model(model_id):
            raise model_not_found(model_id)
        return _model(model_id)

    for path in ("/chat/completions", "/responses", "/embeddings", "/completions", "/moderations"):
        router.add_api_route(path, _sync_endpoint(f"/v1{path}", config), methods=["POST"])

    return router


def _sync_endpoint(path: str, config: EmulatorConfig) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        body = await json_body(request)
        if path == Endpoint.MODERATIONS:
            body.setdefault("model", DEFAULT_MODERATION_MODEL)  # the API's default
        if isinstance(body.get("model"), str) and not config.accepts_model(body["model"]):
            raise model_not_found(body["model"])
        result = backends.echo(path, body, new_id("req"), int(time.time()), config.embedding_dimensions)
        return JSONResponse(result.body, status_code=result.status_code)

    return endpoint


def _model(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "batchkit-emulator"}
