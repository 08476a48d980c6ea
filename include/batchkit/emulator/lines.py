"""What every echo answer is built from: the result of one request line, a 400 for a body the API refuses, and
the deterministic token count, ids and text the echo bodies share."""

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from .errors import envelope

ECHO_CHARS = 200


@dataclass
class LineResult:
    status_code: int
    body: dict[str, Any]


class LineError(Exception):
    """A request body the API refuses: answered as a 400 line (the error file), never an exception."""

    def __init__(self, message: str, param: str | None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code

    def result(self) -> LineResult:
        return bad_request(self.message, self.param, self.code)


def bad_request(message: str, param: str | None, code: str = "missing_required_parameter") -> LineResult:
    return LineResult(400, envelope(message, param=param, code=code))


def tokens(text: str) -> int:
    """A token count from the text's length (4 characters a token, at least 1)."""
    return max(1, math.ceil(len(text) / 4))


def digest(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode()).hexdigest()[:24]


def text_of(content: Any) -> str:
    """Text of a message content: a string, or a list of parts with text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def required_text(body: dict[str, Any], name: str) -> str:
    """``body[name]`` when it is a non-empty string, else a 400."""
    value = body.get(name)
    if value is None:
        raise LineError(f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
    if not isinstance(value, str) or not value:
        raise LineError(f"Invalid type for '{name}': expected a non-empty string.", name, "invalid_type")
    return value
