"""Message content for Anthropic: OpenAI content parts (text and images) -> Anthropic content blocks."""

from __future__ import annotations

from typing import Any

from batchkit.errors import InputError


def content_blocks(content: Any) -> Any:
    """A message's content as Anthropic content blocks: text parts (``text``, ``input_text``) as text blocks, image
    parts (chat's ``image_url``, responses' ``input_image``) as ``image`` blocks (a data URL as a base64 source, any
    other URL as a url source; Anthropic has no ``detail``). Plain text stays as it is."""
    if isinstance(content, str):
        return content
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind in ("text", "input_text"):
            blocks.append({"type": "text", "text": part["text"]})
        elif kind in ("image_url", "input_image"):
            url = part["image_url"]["url"] if kind == "image_url" else part["image_url"]
            blocks.append({"type": "image", "source": _image_source(url)})
        else:
            raise InputError(f"Anthropic takes text and image content only, not {kind!r} parts")
    return blocks


def _image_source(url: str) -> dict[str, Any]:
    if url[:5].lower() != "data:":
        return {"type": "url", "url": url}
    header, _, data = url[5:].partition(",")
    media_type = header.split(";")[0].lower().replace("image/jpg", "image/jpeg")  # Anthropic knows image/jpeg only
    return {"type": "base64", "media_type": media_type, "data": data}
