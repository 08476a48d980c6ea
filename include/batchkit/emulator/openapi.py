"""The emulator's OpenAPI document (/openapi.json): FastAPI's routes and parameters, with the request bodies and
answers of OpenAI's Files, Batches and Models API, which the routes read and write by hand (bounded) rather than
through FastAPI's models."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..batch_api import BatchStatus
from .backends import MAX_DIMENSIONS, MAX_EMBEDDING_INPUTS
from .checks import COMPLETION_WINDOWS, ENDPOINTS, PURPOSES
from .config import EmulatorConfig
from .generations import MAX_CHOICES, MAX_COMPLETION_PROMPTS, MAX_COMPLETION_TOKENS
from .moderations import MAX_INPUTS

BATCH_STATUSES = tuple(status.value for status in BatchStatus)


INT, STR = {"type": "integer"}, {"type": "string"}
NULLABLE_INT, NULLABLE_STR = {"type": ["integer", "null"]}, {"type": ["string", "null"]}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: dict[str, Any], **optional: Any) -> dict:
    """An object schema with ``required`` properties; others may appear (OpenAI adds fields over time)."""
    return {"type": "object", "required": list(required), "properties": {**required, **optional}}


def _page(item: str) -> dict:
    """A list page of ``item`` objects (cursor pagination)."""
    return _object(
        {"object": {"const": "list"}, "data": {"type": "array", "items": _ref(item)}, "has_more": {"type": "boolean"}},
        first_id=NULLABLE_STR,
        last_id=NULLABLE_STR,
    )


METADATA = {
    "type": ["object", "null"],
    "maxProperties": 16,
    "propertyNames": {"maxLength": 64},
    "additionalProperties": {"type": "string", "maxLength": 512},
}
EMBEDDABLE = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "integer"},
        {"type": "array", "minItems": 1, "items": {"type": "integer"}},
    ]
}
EXPIRY = {
    "type": "object",
    "required": ["anchor", "seconds"],
    "properties": {
        "anchor": {"const": "created_at"},
        "seconds": {"type": "integer", "minimum": 3600, "maximum": 2592000},
    },
    "additionalProperties": False,
}
TOKENS = {"type": "array", "minItems": 1, "items": INT}
MODERATION_TEXT = _object({"type": {"const": "text"}, "text": STR})
# an http(s) URL (a data URL must also hold a real image, which a schema cannot say)
MODERATION_IMAGE = _object(
    {
        "type": {"const": "image_url"},
        "image_url": _object({"url": {"type": "string", "pattern": "^https?://[A-Za-z0-9-]+(/[A-Za-z0-9./_-]*)?$"}}),
    }
)
SCHEMAS: dict[str, dict] = {
    "Error": _object({"error": _object({"message": STR, "type": STR, "param": NULLABLE_STR, "code": NULLABLE_STR})}),
    "File": _object(
        {
            "id": STR,
            "object": {"const": "file"},
            "bytes": INT,
            "created_at": INT,
            "filename": STR,
            "purpose": STR,
            "status": STR,
        },
        expires_at=NULLABLE_INT,
        status_details=NULLABLE_STR,
    ),
    "FileList": _page("File"),
    "DeletedFile": _object({"id": STR, "object": {"const": "file"}, "deleted": {"type": "boolean"}}),
    "Batch": _object(
        {
            "id": STR,
            "object": {"const": "batch"},
            "endpoint": STR,
            "input_file_id": STR,
            "completion_window": STR,
            "status": {"enum": list(BATCH_STATUSES)},
            "created_at": INT,
        },
        model=NULLABLE_STR,
        errors={"type": ["object", "null"]},
        output_file_id=NULLABLE_STR,
        error_file_id=NULLABLE_STR,
        **{f"{stage}_at": NULLABLE_INT for stage in (*BATCH_STATUSES, "expires")},
        request_counts=_object({"total": INT, "completed": INT, "failed": INT}),
        metadata=METADATA,
        usage={"type": ["object", "null"]},
        output_expires_after=EXPIRY,
    ),
    "BatchList": _page("Batch"),
    "Model": _object({"id": STR, "object": {"const": "model"}, "created": INT, "owned_by": STR}),
    "ModelList": _object({"object": {"const": "list"}, "data": {"type": "array", "items": _ref("Model")}}),
    "CreateBatch": _object(
        {
            "input_file_id": STR,
            "endpoint": {"enum": list(ENDPOINTS)},
            "completion_window": {"enum": list(COMPLETION_WINDOWS)},
        },
        metadata=METADATA,
        output_expires_after=EXPIRY,
    ),
    "UploadFile": _object(
        {"file": {"type": "string", "format": "binary"}, "purpose": {"enum": list(PURPOSES)}},
        expires_after=EXPIRY,  # the openai SDK sends expires_after[anchor] and expires_after[seconds] (both read)
    ),
    # The synchronous endpoints answer the echo backend's bodies (see backends.echo for what each needs)
    "ChatRequest": _object(
        {"model": _ref("ModelName"), "messages": {"type": "array", "minItems": 1, "items": {"type": "object"}}}
    ),
    "ResponsesRequest": _object(
        {"model": _ref("ModelName"), "input": {"type": ["string", "array"]}}, instructions=NULLABLE_STR
    ),
    "EmbeddingsRequest": _object(
        {
            "model": _ref("ModelName"),
            "input": {
                "anyOf": [
                    {"type": "string", "minLength": 1},
                    {"type": "array", "minItems": 1, "maxItems": MAX_EMBEDDING_INPUTS, "items": EMBEDDABLE},
                ]
            },
        },
        dimensions={"type": "integer", "minimum": 1, "maximum": MAX_DIMENSIONS},
    ),
    "CompletionsRequest": _object(
        {
            "model": _ref("ModelName"),
            "prompt": {
                "anyOf": [
                    STR,
                    {"type": "array", "minItems": 1, "maxItems": MAX_COMPLETION_PROMPTS, "items": STR},
                    TOKENS,
                    {"type": "array", "minItems": 1, "maxItems": MAX_COMPLETION_PROMPTS, "items": TOKENS},
                ]
            },
        },
        n={"type": "integer", "minimum": 1, "maximum": MAX_CHOICES},
        max_tokens={"type": "integer", "minimum": 1, "maximum": MAX_COMPLETION_TOKENS},
    ),
    "ModerationsRequest": _object(
        {
            "input": {
                "anyOf": [
                    STR,
                    {"type": "array", "minItems": 1, "maxItems": MAX_INPUTS, "items": STR},
                    {"type": "array", "minItems": 1, "items": {"anyOf": [MODERATION_TEXT, MODERATION_IMAGE]}},
                ]
            }
        },
        model=_ref("ModelName"),
    ),
    "ModelResponse": {"type": "object"},
}

ERRORS = {
    400: "Invalid request: a parameter or the body is missing, malformed or out of range",
    401: "Missing or wrong API key (Authorization: Bearer <key>)",
    404: "No such object",
    409: "The batch cannot be cancelled in its status",
    413: "The request body or uploaded file is too large",
    429: "Rate limit (an injected fault)",
    500: "Server error (an injected fault)",
}

# (method, path): (request body media type and schema or None, answer schema, error statuses)
OPERATIONS: dict[tuple[str, str], tuple[tuple[str, str] | None, str, tuple[int, ...]]] = {
    ("post", "/v1/files"): (("multipart/form-data", "UploadFile"), "File", (400, 413)),
    ("get", "/v1/files"): (None, "FileList", (400,)),
    ("get", "/v1/files/{file_id}"): (None, "File", (404,)),
    ("delete", "/v1/files/{file_id}"): (None, "DeletedFile", (404,)),
    ("get", "/v1/files/{file_id}/content"): (None, "", (404,)),
    ("post", "/v1/batches"): (("application/json", "CreateBatch"), "Batch", (400, 404, 413)),
    ("get", "/v1/batches"): (None, "BatchList", (400,)),
    ("get", "/v1/batches/{batch_id}"): (None, "Batch", (404,)),
    ("post", "/v1/batches/{batch_id}/cancel"): (None, "Batch", (404, 409)),
    ("get", "/v1/models"): (None, "ModelList", ()),
    ("get", "/v1/models/{model_id}"): (None, "Model", (404,)),
    ("post", "/v1/chat/completions"): (("application/json", "ChatRequest"), "ModelResponse", (400, 404, 413)),
    ("post", "/v1/responses"): (("application/json", "ResponsesRequest"), "ModelResponse", (400, 404, 413)),
    ("post", "/v1/embeddings"): (("application/json", "EmbeddingsRequest"), "ModelResponse", (400, 404, 413)),
    ("post", "/v1/completions"): (("application/json", "CompletionsRequest"), "ModelResponse", (400, 404, 413)),
    ("post", "/v1/moderations"): (("application/json", "ModerationsRequest"), "ModelResponse", (400, 404, 413)),
}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def document(app: FastAPI, config: EmulatorConfig) -> dict:
    """FastAPI's document of ``app`` with each /v1 operation's body and answers (and, as ``config`` has them, the
    API key and injected faults); FastAPI's 422 never happens here: invalid parameters are a 400."""
    spec = get_openapi(title=app.title, version=app.version, routes=app.routes)
    for (method, path), (body, answer, errors) in OPERATIONS.items():
        operation = spec["paths"][path][method]
        if body:
            media, name = body
            operation["requestBody"] = {"required": True, "content": {media: {"schema": _ref(name)}}}
        statuses = [*errors, *([401] if config.api_key else []), *([429, 500] if config.api_error_rate else [])]
        if method == "post" and path == "/v1/batches" and config.create_error_rate:
            statuses.append(429)
        success = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        operation["responses"] = {
            "200": {"description": "OK", "content": _json(_ref(answer)) if answer else success},
            **{str(s): {"description": ERRORS[s], "content": _json(_ref("Error"))} for s in sorted(set(statuses))},
        }
        if config.api_key:
            operation["security"] = [{"bearer": []}]
    models = {"type": "string"} if "*" in config.models else {"enum": list(config.models)}
    spec["components"] = {"schemas": {**SCHEMAS, "ModelName": models}}
    spec["paths"]["/v1/models/{model_id}"]["get"]["parameters"][0]["schema"] = _ref("ModelName")
    if config.api_key:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return spec


def install(app: FastAPI, config: EmulatorConfig) -> None:
    """Serve :func:`document` as the app's /openapi.json (built once, when first asked)."""

    def build() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, config)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
