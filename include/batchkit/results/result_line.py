"""One line of a batch output or error file -> one ``Result``: ``parse_line`` from a parsed line, ``typed`` from
the line's bytes with its embedding read by simdjson straight into a float64 buffer."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import simdjson

from ..ledger import is_retryable
from . import moderations
from .answers import ResultStatus


@dataclass
class Result:
    custom_id: str
    batch_id: str
    status: str
    http_status: int | None = None
    response_text: str | None = None
    finish_reason: str | None = None
    refusal: str | None = None
    embedding: list[float] | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 1
    cached_tokens: int | None = None  # of prompt_tokens, read from the prompt cache
    cache_write_tokens: int | None = None  # of prompt_tokens, written to the prompt cache (Anthropic)

    @property
    def retryable(self) -> bool:
        return is_retryable(self.status, self.http_status, self.error_code)


def typed(parser: simdjson.Parser, raw: bytes, batch_id: str) -> tuple[Result, bytes | None]:
    """One line and its embedding as float64 bytes, read by simdjson straight into a buffer (no Python float is
    made: that was two thirds of parsing an embeddings file). Other lines are parsed by ``parse_line``."""
    line = parser.parse(raw)
    try:
        vector = line.at_pointer("/response/body/data/0/embedding").as_buffer(of_type="d")
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):  # no numeric embedding here
        del line  # the parser is reused for the next line only once its objects are gone
        return parse_line(orjson.loads(raw), batch_id), None
    response = line["response"]
    body, error = response["body"], line.get("error")
    usage = body.get("usage")
    plain = {
        "custom_id": line["custom_id"],
        "error": error.as_dict() if isinstance(error, simdjson.Object) else error,
        "response": {
            "status_code": response.get("status_code"),
            "body": {
                "object": body.get("object"),
                "model": body.get("model"),
                "usage": usage.as_dict() if isinstance(usage, simdjson.Object) else usage,
            },
        },
    }
    del line, response, body, error, usage
    return parse_line(plain, batch_id), vector


def parse_line(line: dict[str, Any], batch_id: str) -> Result:
    """One result line: ``{id, custom_id, response: {status_code, request_id, body}, error}``."""
    response, error = line.get("response"), line.get("error")
    status_code = response.get("status_code") if response else None
    body = (response or {}).get("body") or {}
    if status_code == 200 and not error:
        prompt, completion, total, cached, written = token_counts(body.get("usage") or {})
        return Result(
            custom_id=line["custom_id"],
            batch_id=batch_id,
            status=ResultStatus.OK.value,
            http_status=200,
            response_text=_response_text(body),
            finish_reason=_finish_reason(body),
            refusal=_refusal(body),
            embedding=_embedding(body),
            model=body.get("model"),
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=total,
            cached_tokens=cached,
            cache_write_tokens=written,
        )
    detail = error or body.get("error") or {}
    return Result(
        custom_id=line["custom_id"],
        batch_id=batch_id,
        status=ResultStatus.ERROR.value,
        http_status=status_code,
        error_code=detail.get("code") or (f"http_{status_code}" if status_code else "unknown_error"),
        error_message=detail.get("message") or "no error message in the result line",
    )


def token_counts(usage: dict[str, Any]) -> tuple[int | None, ...]:
    """``(prompt, completion, total, cached, cache_write)`` tokens of a usage object: chat completions
    (``prompt_tokens``), responses (``input_tokens``) or Anthropic messages, whose ``input_tokens`` leave out the
    cache reads and writes: ``prompt`` is every input token, as OpenAI counts it. An Anthropic answer converted to a
    chat completion (``openai_batch.vendors.anthropic``) carries its cache writes as
    ``prompt_tokens_details.cache_write_tokens``."""
    read, written = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    if (read is not None or written is not None) and prompt is not None:  # Anthropic
        prompt += (read or 0) + (written or 0)
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    written = details.get("cache_write_tokens", written)
    return prompt, completion, usage.get("total_tokens"), details.get("cached_tokens", read), written


def _response_text(body: dict[str, Any]) -> str | None:
    """The answer's text: a chat message, a response's output text, or a moderation result as JSON."""
    if "choices" in body:
        choices = body["choices"] or [{}]
        return (choices[0].get("message") or {}).get("content")
    if body.get("object") == "response":
        return "".join(part.get("text", "") for part in _output_parts(body, "output_text"))
    return moderations.answer_text(body)


def _finish_reason(body: dict[str, Any]) -> str | None:
    """Why generation stopped: chat's ``finish_reason``; a response cut at ``max_output_tokens`` is ``length``."""
    if "choices" in body:
        return ((body["choices"] or [{}])[0]).get("finish_reason")
    if body.get("object") == "response":
        if body.get("status") != "incomplete":
            return "stop"
        reason = (body.get("incomplete_details") or {}).get("reason")
        return "length" if reason == "max_output_tokens" else reason
    return None


def _refusal(body: dict[str, Any]) -> str | None:
    if "choices" in body:
        return (((body["choices"] or [{}])[0]).get("message") or {}).get("refusal")
    if body.get("object") == "response":
        return "".join(part.get("refusal") or "" for part in _output_parts(body, "refusal")) or None
    return None


def _output_parts(body: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    """The content parts of type ``kind`` in a response's output messages."""
    for item in body.get("output") or []:
        if item.get("type") == "message":
            yield from (part for part in item.get("content") or [] if part.get("type") == kind)


def _embedding(body: dict[str, Any]) -> list[float] | None:
    data = body.get("data") if body.get("object") == "list" else None
    return data[0].get("embedding") if data else None
