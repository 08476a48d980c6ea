"""The echo backend's /v1/chat/completions and /v1/responses answers: the last user text echoed (or JSON following
a requested schema), the number of images the request carried said after it, usage with the images' tokens."""

from typing import Any

from ..batch_api import Endpoint
from . import structured
from .lines import ECHO_CHARS, LineError, LineResult, digest, text_of, tokens
from .vision import Image, chat_images, image_tokens, responses_images


def echo_text(text: str, images: list[Image]) -> str:
    """``echo: <text>``, with ``[n image(s)]`` after it when the request carried images."""
    said = f"echo: {text[:ECHO_CHARS]}"
    if images:
        said += f" [{len(images)} image{'s' if len(images) > 1 else ''}]"
    return said


def chat(body: dict[str, Any], model: str, key: str, created: int, invalid_output: str | None) -> LineResult:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise LineError("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not all(isinstance(m, dict) for m in messages):
        raise LineError("Invalid type for 'messages': each message must be an object.", "messages", "invalid_type")
    images = chat_images(messages)
    prompt = "\n".join(text_of(m.get("content")) for m in messages)
    user = next((text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), prompt)
    url = Endpoint.CHAT
    answer = structured.respond(url, body, user, invalid_output) or structured.Answer(echo_text(user, images))
    p = tokens(prompt) + 4 * len(messages) + sum(image_tokens(model, image) for image in images)
    c = tokens(answer.text or answer.refusal or "")
    message = {"role": "assistant", "content": answer.text, "refusal": answer.refusal, "annotations": []}
    return LineResult(
        200,
        {
            "id": f"chatcmpl-{digest(key)}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "length" if answer.truncated else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": p,
                "completion_tokens": c,
                "total_tokens": p + c,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        },
    )


def responses(body: dict[str, Any], model: str, key: str, created: int, invalid_output: str | None) -> LineResult:
    if "input" not in body:
        raise LineError("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    given = body["input"]
    if not isinstance(given, str | list):
        raise LineError("Invalid type for 'input': expected a string or an array.", "input", "invalid_type")
    images = responses_images(given)
    text = (
        given
        if isinstance(given, str)
        else "\n".join(text_of(item.get("content")) for item in given if isinstance(item, dict))
    )
    url = Endpoint.RESPONSES
    answer = structured.respond(url, body, text, invalid_output) or structured.Answer(echo_text(text, images))
    p = tokens(text + (body.get("instructions") or "")) + sum(image_tokens(model, image) for image in images)
    c = tokens(answer.text or answer.refusal or "")
    status = "incomplete" if answer.truncated else "completed"
    part = (
        {"type": "refusal", "refusal": answer.refusal}
        if answer.text is None
        else {"type": "output_text", "text": answer.text, "annotations": []}
    )
    return LineResult(
        200,
        {
            "id": f"resp_{digest(key)}",
            "object": "response",
            "created_at": created,
            "status": status,
            "model": model,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if answer.truncated else None,
            "instructions": body.get("instructions"),
            "output": [
                {
                    "type": "message",
                    "id": f"msg_{digest(key, 'msg')}",
                    "status": status,
                    "role": "assistant",
                    "content": [part],
                }
            ],
            "usage": {
                "input_tokens": p,
                "output_tokens": c,
                "total_tokens": p + c,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        },
    )
