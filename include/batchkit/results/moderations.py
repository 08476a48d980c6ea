"""``/v1/moderations`` answers: the ledger keeps each request's moderation result as JSON text (``response_text``);
the merge reads it into typed columns, as it reads structured outputs' properties:

- ``flagged`` (boolean): the API's verdict;
- ``categories`` (list of strings, sorted): the names of the flagged categories (``[]``: none), a ``text[]`` in
  PostgreSQL and a ``VARCHAR[]`` in DuckDB (Redshift: ``SUPER``);
- ``category_scores`` (string): every category's score as a JSON object, e.g. ``{"harassment": 0.91, ...}``
  (``->>``/``json_extract`` read one score in either warehouse).

One request sends one input (the prompt, with its images as the moderation API's multi-modal input), so its answer
has one result; should it have several, they are combined (flagged if any is, a category flagged if any flags it,
each score the highest).
"""

from __future__ import annotations

from typing import Any

import orjson

from ..batch_api import Endpoint
from ..errors import InputError

COLUMNS = ("flagged", "categories", "category_scores")


def answer_text(body: dict[str, Any]) -> str | None:
    """A moderation response body's result as JSON text (None: not a moderation response)."""
    results = body.get("results")
    if not isinstance(results, list) or not results or not all(isinstance(r, dict) and "flagged" in r for r in results):
        return None
    result = results[0] if len(results) == 1 else _combined(results)
    return orjson.dumps(result).decode()


def _combined(results: list[dict[str, Any]]) -> dict[str, Any]:
    categories: dict[str, bool] = {}
    scores: dict[str, float] = {}
    for result in results:
        for name, flagged in (result.get("categories") or {}).items():
            categories[name] = bool(categories.get(name)) or bool(flagged)
        for name, score in (result.get("category_scores") or {}).items():
            scores[name] = max(scores.get(name, score), score)
    flagged = any(r.get("flagged") for r in results)
    return {"flagged": flagged, "categories": categories, "category_scores": scores}


def selects(endpoint: str | None, ok: str) -> list[str]:
    """The typed columns' SQL (DuckDB) over ``r.response_text`` where ``ok`` holds (else null)."""
    if endpoint != Endpoint.MODERATIONS:
        return []
    text = "r.response_text"
    flagged_map = f"""json_transform(json_extract({text}, '$.categories'), '"MAP(VARCHAR, BOOLEAN)"')"""
    return [
        f"CASE WHEN {ok} THEN TRY_CAST(json_extract({text}, '$.flagged') AS BOOLEAN) END AS flagged",
        f"CASE WHEN {ok} THEN list_sort([e.key FOR e IN map_entries({flagged_map}) IF e.value]) END AS categories",
        f"CASE WHEN {ok} THEN CAST(json_extract({text}, '$.category_scores') AS VARCHAR) END AS category_scores",
    ]


def check_columns(endpoint: str, input_columns: list[str]) -> None:
    """Refuse kept input columns named as the moderation columns (case-insensitively, as warehouses compare)."""
    if endpoint != Endpoint.MODERATIONS:
        return
    clashes = [name for name in input_columns if name.lower() in COLUMNS]
    if clashes:
        raise InputError(
            f"input column(s) {', '.join(map(repr, clashes))} collide with the moderation result columns "
            f"({', '.join(COLUMNS)}); rename them, or leave them out (input_columns)"
        )
