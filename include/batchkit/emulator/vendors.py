"""The three APIs the emulator speaks, and what differs between them as data. OpenAI (``/v1``) and Azure OpenAI
(``/openai/v1``) share the Files and Batches routers; Anthropic's Message Batches (``/v1/messages/batches``) has its
own router (``anthropic``). Each API sees only its own files and batches; all three share the processor, the
faults and the limits' settings."""

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, replace

from fastapi.responses import JSONResponse

from .checks import ENDPOINTS
from .config import EmulatorConfig
from .errors import APIError, anthropic_body

OPENAI, AZURE, ANTHROPIC = "openai", "azure", "anthropic"
ANTHROPIC_PREFIX = "/v1/messages"  # Message Batches (and the synchronous Messages endpoint)
MESSAGES_URL = "/v1/messages"  # the url of an Anthropic batch request inside the emulator


@dataclass(frozen=True)
class Vendor:
    """An API's differences: where its routes live and which settings bound its batches."""

    name: str
    prefix: str
    expires: bool = True  # the completion window ends a batch (Azure: "we do not expire the jobs that take longer")
    bare_endpoints: bool = False  # "/chat/completions" is accepted beside "/v1/chat/completions" (Azure's examples)
    max_requests: str = "max_requests_per_batch"  # the EmulatorConfig setting of requests per batch
    max_bytes: str = "max_batch_input_bytes"  # ... of bytes per batch
    models: str = "models"  # ... of the models (Azure: deployment names) that exist

    def limits(self, config: EmulatorConfig) -> EmulatorConfig:
        """``config`` with this vendor's request and size limits and models in the settings validation reads."""
        if self.name == OPENAI:
            return config
        return replace(
            config,
            max_requests_per_batch=getattr(config, self.max_requests),
            max_batch_input_bytes=getattr(config, self.max_bytes),
            models=getattr(config, self.models),
        )

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The ``endpoint`` values a batch may name."""
        bare = tuple(e.removeprefix("/v1") for e in ENDPOINTS) if self.bare_endpoints else ()
        return ENDPOINTS + bare

    def canonical(self, url: str) -> str:
        """A request ``url`` as the echo backend knows it (Azure's "/chat/completions" is "/v1/chat/completions")."""
        return "/v1" + url.removeprefix("/v1") if self.bare_endpoints else url

    def urls(self, endpoint: str) -> frozenset[str]:
        """The request ``url`` values that match a batch's ``endpoint``."""
        if not self.bare_endpoints:
            return frozenset({endpoint})
        bare = endpoint.removeprefix("/v1")
        return frozenset({bare, "/v1" + bare})


OPENAI_API = Vendor(OPENAI, "/v1")
AZURE_API = Vendor(
    AZURE,
    "/openai/v1",
    expires=False,
    bare_endpoints=True,
    max_requests="azure_max_requests",
    models="azure_deployments",
)
ANTHROPIC_API = Vendor(
    ANTHROPIC,
    ANTHROPIC_PREFIX,
    max_requests="anthropic_max_requests",
    max_bytes="anthropic_max_batch_bytes",
    models="anthropic_models",
)
BY_NAME = {v.name: v for v in (OPENAI_API, AZURE_API, ANTHROPIC_API)}


def of_path(path: str) -> str | None:
    """The API a request path belongs to (None for /health, /docs, /openapi.json)."""
    if path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/"):
        return ANTHROPIC
    if path.startswith("/openai/v1/"):
        return AZURE
    if path.startswith("/v1/"):
        return OPENAI
    return None


def error_response(vendor: str | None, error: APIError) -> JSONResponse:
    """``error`` in the vendor's shape: Anthropic's ``{"type": "error", ...}``, else OpenAI's envelope (Azure's
    errors have OpenAI's shape)."""
    if vendor == ANTHROPIC:
        return JSONResponse(anthropic_body(error.status, error.message, error.type), status_code=error.status)
    return error.response()


def _matches(given: str | None, key: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), key.encode())


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def auth_error(vendor: str, headers: Mapping[str, str], api_key: str | None) -> APIError | None:
    """Why a request to ``vendor`` is refused for its headers (None when it may go on). OpenAI: a bearer key when
    the emulator has one. Azure: an ``api-key`` header (or a bearer key), always present, equal to the emulator's
    key when it has one. Anthropic: ``x-api-key`` (or a bearer token) likewise, and ``anthropic-version``."""
    if vendor == OPENAI:
        given = headers.get("authorization", "")
        if api_key and not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            return APIError(
                401,
                "Incorrect API key provided. Send the key the emulator was started with "
                "(BATCHKIT_EMULATOR_API_KEY or --api-key-file).",
                code="invalid_api_key",
            )
        return None
    header = "api-key" if vendor == AZURE else "x-api-key"
    given = headers.get(header) or _bearer(headers)
    if given is None:
        return APIError(401, f"Missing credentials: send the API key in the '{header}' header.", code="401")
    if api_key and not _matches(given, api_key):
        return APIError(
            401,
            f"Invalid API key in '{header}'. Send the key the emulator was started with "
            "(BATCHKIT_EMULATOR_API_KEY or --api-key-file).",
            code="401",
        )
    if vendor == ANTHROPIC and not headers.get("anthropic-version"):
        return APIError(400, "anthropic-version: header is required")
    return None
