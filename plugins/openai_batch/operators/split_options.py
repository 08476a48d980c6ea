"""The split options as the split operator takes them: each one a keyword argument and a templated field, derived
from its declaration on ``SplitConfig`` (``batchkit.split.options``), and its rendered value turned into the config's."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field
from typing import Any

from batchkit.split.options import Option, declared, default_of
from batchkit.split.split_config import SplitConfig
from openai_batch.operators.common import as_bool, as_list

# The operator's keyword of each split option it takes -> (the SplitConfig field, its declaration)
OPTIONS = {spec.operator: (each, spec) for each, spec in declared(SplitConfig) if spec.operator}
VENDOR_LIMITS = ("max_requests", "max_bytes")  # left empty (their default here): the connection's vendor's limit


def operator_default(option: Field) -> Any:
    """An option's default on the operator: the field's; None for one made by a factory or one the vendor limits
    (MISSING: required)."""
    return None if option.default_factory is not MISSING or option.name in VENDOR_LIMITS else option.default


def with_options(init: Callable[..., None]) -> inspect.Signature:
    """``init``'s signature with each split option as a keyword argument: Airflow reads it to apply
    ``default_args``, to check ``partial``/``expand`` arguments and to name a missing required one."""
    signature = inspect.signature(init)
    given = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    rest = [p for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD]
    options = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if operator_default(each) is MISSING else operator_default(each),
            annotation=each.type,
        )
        for name, (each, _) in OPTIONS.items()
    ]
    return signature.replace(parameters=[*given, *options, *rest])


def config_value(value: Any, option: Field, spec: Option, empty: Mapping[str, Any]) -> Any:
    """A rendered option as ``SplitConfig`` takes it: empty (None, "", [], {}) is its value in ``empty`` (by field
    name, e.g. the vendor's limits), else the option's default."""
    if option.name == "output_schema":
        from batchkit.structured import load_schema

        return load_schema(value)  # a JSON Schema, a Pydantic model or its dotted path
    if value is None or (isinstance(value, str | list | dict) and not value):
        default = empty.get(option.name, default_of(option))
        return value if default is MISSING else default
    if spec.kind == "integer":
        return int(value)
    if spec.kind == "boolean":
        return as_bool(value)
    if spec.kind == "array":
        return as_list(value) or default_of(option)
    return value
