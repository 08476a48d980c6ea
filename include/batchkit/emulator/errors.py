"""OpenAI's error envelope, built in one place: ``{"error": {"message", "type", "param", "code"}}``."""

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


RATE_LIMITED = APIError(
    429, "Rate limit reached for requests (injected fault).", code="rate_limit_exceeded", type_="requests"
)
SERVER_FAILED = APIError(
    500, "The server had an error while processing your request (injected fault).", type_="server_error"
)
