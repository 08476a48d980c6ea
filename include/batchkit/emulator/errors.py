"""OpenAI's errors, built in one place: the envelope ``{"error": {"message", "type", "param", "code"}}`` of HTTP
answers and error-file lines, and the batch-level errors of ``batch.errors`` (the line errors of an input file are
recorded by ``validate``)."""

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


def input_deleted(file_id: str) -> dict[str, Any]:
    """A batch validation error (``batch.errors.data``): the input file went away first."""
    return {
        "code": "file_not_found",
        "message": f"The input file {file_id} was deleted before the batch was validated.",
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
