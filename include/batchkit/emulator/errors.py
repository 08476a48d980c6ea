"""OpenAI's errors, built in one place: the envelope ``{"error": {"message", "type", "param", "code"}}`` of HTTP
answers and error-file lines, and the batch-level errors of ``batch.errors`` (the line errors of an input file are
recorded by ``validate``); and the same errors in Anthropic's shape (``anthropic_body``)."""

import secrets
from typing import Any

from fastapi.responses import JSONResponse


def envelope(
    message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """An error body as OpenAI sends it (HTTP answers and error-file lines alike)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def server_error(message: str) -> dict[str, Any]:
    return envelope(message, "server_error")


class APIError(Exception):
    """An error answered over HTTP in OpenAI's envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type_

    def body(self) -> dict[str, Any]:
        return envelope(self.message, self.type, self.param, self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def model_not_found(model: str) -> APIError:
    return APIError(
        404, f"The model '{model}' does not exist or you do not have access to it.", "model", "model_not_found"
    )


def rate_limited(calls: bool = False) -> APIError:
    """An injected 429, worded as OpenAI words it for an API call or for a request line of a batch."""
    message = "Rate limit reached (injected fault)." if calls else "Rate limit reached for requests (injected fault)."
    return APIError(429, message, code="rate_limit_exceeded", type_="requests")


def server_failed() -> APIError:
    """An injected 500."""
    message = "The server had an error while processing your request (injected fault)."
    return APIError(500, message, type_="server_error")


def overloaded() -> APIError:
    """An injected 529, as Anthropic answers when it is overloaded."""
    return APIError(529, "Overloaded (injected fault).", type_="overloaded_error")


def input_deleted(file_id: str) -> dict[str, Any]:
    """A batch validation error (``batch.errors.data``): the input file went away first."""
    return {
        "code": "file_not_found",
        "message": f"The input file {file_id} was deleted (or expired) before the batch was validated.",
        "param": "input_file_id",
        "line": None,
    }


def token_limit_error(detail: str) -> dict[str, Any]:
    """A batch validation error: the organisation's enqueued-token limit for the model."""
    return {
        "code": "token_limit_exceeded",
        "param": None,
        "line": None,
        "message": f"Enqueued token limit reached for this model ({detail}). Try again once some in_progress "
        "batches have been completed.",
    }


# Anthropic's error type for each HTTP status (https://docs.anthropic.com/en/api/errors)
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ANTHROPIC_ONLY = frozenset(ANTHROPIC_TYPES.values()) - {"invalid_request_error"}


def anthropic_body(status: int, message: str, type_: str | None = None) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}``, as Anthropic answers an error; ``type_``
    when it is one of Anthropic's types, else the type of ``status``."""
    kind = type_ if type_ in _ANTHROPIC_ONLY else ANTHROPIC_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": f"req_{secrets.token_hex(12)}"}
