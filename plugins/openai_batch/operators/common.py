"""What every operator of the pipeline shares: templated values as types."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException


def as_bool(value: Any) -> bool:
    """A templated flag: rendered Params may arrive as ``"False"`` when native rendering does not apply."""
    return value.strip().lower() in ("true", "1", "yes") if isinstance(value, str) else bool(value)


def as_list(value: Any) -> list[str]:
    """A templated list of names that may arrive as its text (``"['a', 'b']"``) or as ``"a, b"``."""
    if isinstance(value, str):
        import ast

        text = value.strip()
        value = ast.literal_eval(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
    return list(value or [])


def price_vendor(split: dict[str, Any]) -> str:
    """Whose batch prices the run's bill takes: the vendor of the split's estimate (splits before vendors: openai)."""
    return str((split.get("estimate") or {}).get("vendor") or "openai")


def as_dict(value: Any) -> dict[str, Any]:
    """A templated JSON object that may arrive as its text."""
    if isinstance(value, str):
        import ast

        value = ast.literal_eval(value) if value.strip() else {}
    if not isinstance(value, dict):
        raise AirflowFailException(f"expected a JSON object, got {value!r}")
    return value
