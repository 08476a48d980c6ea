"""How a split option is declared once (``option`` on a ``SplitConfig`` field) and offered everywhere from that one
declaration: as a ``batchkit split`` flag (``cli_arguments``), a Param of the DAG's trigger form and a field of the
split operator (both built by the Airflow layer from ``declared``). Plain data only: no Airflow here."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from ..errors import InputError
from ..sizes import parse_size

CLI_TYPES: dict[str, Callable[[str], Any] | None] = {"string": None, "integer": int, "number": float, "array": None}


@dataclass(frozen=True)
class Option:
    """One split option's declaration (see ``option``)."""

    help: str
    kind: str  # its JSON type: string, integer, number, boolean, object, array
    flag: str  # the CLI spelling; "": not on the command line
    parse: Callable[[str], Any] | None  # the CLI's type (default: by kind)
    choices: tuple[str, ...] | None
    group: str | None  # CLI: a required mutually exclusive group of that name
    param: str | None  # the trigger form's Param name; None: not in the form
    form: Mapping[str, Any]  # the Param's schema as plain data (title, description, examples, minimum...)
    operator: str | None  # the split operator's keyword; None: not an operator field


def option(
    default: Any,
    help: str,
    kind: str,
    *,
    flag: str | None = None,
    parse: Callable[[str], Any] | None = None,
    choices: tuple[str, ...] | None = None,
    group: str | None = None,
    form: Mapping[str, Any] | None = None,
    param: str | None = None,
    operator: str | None = "",
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A ``SplitConfig`` field declared once: ``help`` and ``kind`` (its JSON type); ``flag``: its ``batchkit split``
    spelling (default: ``--<name with dashes>``; ``""``: none); ``form``: its Param's title, description and hints
    (none: not in the trigger form), named ``param`` (default: the field's name); ``operator``: its keyword on the
    split operator (``""``: the field's name; None: not a field). ``default`` MISSING makes it required;
    ``factory`` makes a fresh default each time (e.g. ``dict``)."""
    declared = {
        "help": help,
        "kind": kind,
        "flag": flag,
        "parse": parse,
        "choices": choices,
        "group": group,
        "param": param,
        "form": form,
        "operator": operator,
    }
    if factory is not None:
        return field(default_factory=factory, metadata={"option": declared})
    return field(default=default, metadata={"option": declared})


def declared(config: type) -> Iterator[tuple[Field, Option]]:
    """Each declared field of the dataclass ``config`` with its ``Option`` (names filled in)."""
    for each in fields(config):
        spec = dict(each.metadata["option"])
        spec["flag"] = "--" + each.name.replace("_", "-") if spec["flag"] is None else spec["flag"]
        spec["param"] = None if spec["form"] is None else spec["param"] or each.name
        spec["form"] = spec["form"] or {}
        spec["operator"] = each.name if spec["operator"] == "" else spec["operator"]
        yield each, Option(**spec)


def default_of(setting: Field) -> Any:
    """The field's default (a fresh one from its factory); MISSING when it is required."""
    return setting.default_factory() if setting.default_factory is not MISSING else setting.default


def cli_arguments(config: type) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    """``(flag, group, add_argument keywords)`` of each option ``batchkit split`` offers, in declaration order."""
    for each, spec in declared(config):
        if not spec.flag:
            continue
        keywords: dict[str, Any] = {"dest": each.name, "help": spec.help}
        default = default_of(each)
        if spec.kind == "boolean":
            keywords["action"] = "store_true"
        else:
            if spec.kind == "array":  # the flag repeated, once per item
                keywords["action"] = "append"
            if (shown := spec.flag.lstrip("-").replace("-", "_")) != each.name:  # as argparse names its own
                keywords["metavar"] = shown.upper()
            parse = spec.parse or CLI_TYPES[spec.kind]
            keywords |= {"type": parse} if parse else {}
            keywords |= {"choices": spec.choices} if spec.choices else {}
        if default is MISSING:
            keywords["required"] = True
        elif default is not None:
            keywords["default"] = default
        yield spec.flag, spec.group, keywords


def size_arg(text: str) -> int:
    """``parse_size`` for argparse, which shows the message of an ``ArgumentTypeError`` only."""
    try:
        return parse_size(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def json_object_arg(text: str) -> dict:
    """A JSON object as the API will receive it: strict JSON (no NaN/Infinity, which would silently become null),
    at most 1,024 levels deep."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON (the API cannot receive it)")

    try:
        value = json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise argparse.ArgumentTypeError(f"not valid JSON: {reason}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def json_object_or_file_arg(text: str) -> dict:
    """``json_object_arg`` of the text, or of the file named after an ``@``."""
    if not text.startswith("@"):
        return json_object_arg(text)
    try:
        with open(text[1:], encoding="utf-8") as handle:
            return json_object_arg(handle.read())
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {exc.strerror or exc}") from None
