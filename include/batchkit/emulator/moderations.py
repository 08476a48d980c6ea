"""/v1/moderations for the echo backend: one result per input string, or one for a list of text and image items,
in the API's shape (``flagged``, ``categories``, ``category_scores``, ``category_applied_input_types``).

Scores are deterministic: a category is flagged (score 0.9 to 0.99) when the text names it as a word, e.g.
"violence" or "self-harm/intent" (a sub-category flags its parent too), or when an image's http(s) URL has a
path segment named after an image category ("self-harm", "sexual", "violence"); every other score is below 0.01."""

import re
from typing import Any

from .lines import LineError, LineResult, digest
from .vision import check_url

CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
IMAGE_CATEGORIES = frozenset(
    {"self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "violence", "violence/graphic"}
)
MAX_INPUTS = 32  # strings in one request
_NAMED = {c: re.compile(rf"(?<![\w/-]){re.escape(c)}(?![\w/-])", re.IGNORECASE) for c in CATEGORIES}


def moderate(body: dict[str, Any], model: str, key: str) -> LineResult:
    """A ``ModerationCreateResponse`` body for a /v1/moderations request, or a 400."""
    given = body.get("input")
    if given is None:
        raise LineError("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    if isinstance(given, str):
        inputs = [(given, [])]
    elif isinstance(given, list) and 0 < len(given) <= MAX_INPUTS and all(isinstance(i, str) for i in given):
        inputs = [(text, []) for text in given]
    elif isinstance(given, list) and given and all(isinstance(i, dict) for i in given):
        inputs = [_multimodal(given)]
    else:
        raise LineError(
            f"Invalid 'input': a string, an array of 1 to {MAX_INPUTS} strings, or an array of text and image_url "
            "objects.",
            "input",
        )
    return LineResult(
        200, {"id": f"modr-{digest(key)}", "model": model, "results": [_result(t, urls) for t, urls in inputs]}
    )


def _multimodal(items: list[dict]) -> tuple[str | None, list[str]]:
    """The text (None when there is none) and the image URLs of a list of ``text`` and ``image_url`` items."""
    texts, urls = [], []
    for k, item in enumerate(items):
        kind = item.get("type")
        if kind == "text":
            if not isinstance(item.get("text"), str):
                raise LineError(f"Invalid type for 'input[{k}].text': expected a string.", f"input[{k}].text")
            texts.append(item["text"])
        elif kind == "image_url":
            ref = item.get("image_url")
            if not isinstance(ref, dict):
                raise LineError(
                    f"Invalid type for 'input[{k}].image_url': expected an object.", f"input[{k}].image_url"
                )
            check_url(ref.get("url"), f"input[{k}].image_url.url")
            urls.append(ref["url"])
        else:
            raise LineError(
                f"Invalid value: '{kind}'. Supported values are: 'text' and 'image_url'.", f"input[{k}].type"
            )
    return ("\n".join(texts) if texts else None), urls


def _named_in_url(url: str) -> set[str]:
    if not url.lower().startswith(("http://", "https://")):
        return set()
    segments = set(re.split(r"[^a-z0-9-]+", url.lower()))
    return {c for c in IMAGE_CATEGORIES if c in segments}


def _result(text: str | None, urls: list[str]) -> dict[str, Any]:
    hits = {c for c in CATEGORIES if text and _NAMED[c].search(text)}
    hits |= {c for url in urls for c in _named_in_url(url)}
    hits |= {c.split("/")[0] for c in hits}
    seed = "\x00".join([text or "", *urls])
    scores, applied = {}, {}
    for category in CATEGORIES:
        kinds = (["text"] if text is not None else []) + (["image"] if urls and category in IMAGE_CATEGORIES else [])
        share = int(digest(seed, category)[:8], 16) / 16**8
        scores[category] = round(0.9 + 0.09 * share, 6) if category in hits else round(0.01 * share, 6) * bool(kinds)
        applied[category] = kinds
    return {
        "flagged": bool(hits),
        "categories": {c: c in hits for c in CATEGORIES},
        "category_scores": scores,
        "category_applied_input_types": applied,
    }
