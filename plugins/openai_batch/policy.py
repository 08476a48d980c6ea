"""Deployment policy: which sources, warehouse connections and tables a DAG's Params may name, and settings that
every worker must read alike.

Params are chosen by whoever triggers the DAG; what they may reach is the deployment's decision, set in its
environment (``OPENAI_BATCH_ALLOWED_*``) and passed to the operators. ``None`` means no restriction (operators
used in your own DAGs, where you write the values yourself).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from collections.abc import Sequence

from airflow.sdk.exceptions import AirflowFailException


def names(text: str) -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def from_env(name: str, default: str) -> list[str]:
    """A comma-separated allow-list from the environment, else ``default``."""
    return names(os.environ.get(name, default))


def run_time(variable: str, default: str) -> str:
    """A template for a setting read when the task runs: the Airflow Variable ``variable`` (secrets backend,
    ``AIRFLOW_VAR_<NAME>`` or the metadata DB, the same for every worker), else ``default``."""
    return f"{{{{ var.value.get({variable!r}, {default!r}) }}}}"


def check_source(source: str, allowed: Sequence[str] | None) -> None:
    """``source`` (a path or URL, after ``{partition}`` is filled in) must lie under one of ``allowed``."""
    if allowed is None:
        return
    where = _normal(source)
    if not any(where == root or where.startswith(root.rstrip("/") + "/") for root in map(_normal, allowed)):
        _refuse("source", source, allowed, "OPENAI_BATCH_ALLOWED_SOURCES")


def check_warehouse(conn_id: str, table: str, conns: Sequence[str] | None, tables: Sequence[str] | None) -> None:
    """The warehouse connection (empty: the default DuckDB file) and table (``fnmatch`` patterns, e.g.
    ``llm.*``) must be allowed."""
    if conns is not None and conn_id and conn_id not in conns:
        _refuse("warehouse_conn_id", conn_id, conns, "OPENAI_BATCH_ALLOWED_WAREHOUSE_CONNS")
    if tables is not None and not any(fnmatch.fnmatchcase(table.lower(), p.lower()) for p in tables):
        _refuse("target_table", table, tables, "OPENAI_BATCH_ALLOWED_TABLES")


def check_api_conn(conn_id: str, allowed: Sequence[str] | None) -> None:
    """The batch vendor connection ``conn_id`` (the ``conn_id`` Param) must be allowed: it decides who is paid."""
    if allowed is not None and conn_id not in allowed:
        _refuse("conn_id", conn_id, allowed, "OPENAI_BATCH_ALLOWED_API_CONNS")


def _normal(location: str) -> str:
    """A comparable form: ``scheme://bucket/normalised/key`` or an absolute normalised local path."""
    from batchkit.storage import is_remote

    if is_remote(location):
        scheme, rest = location.split("://", 1)
        return f"{scheme.lower()}://{posixpath.normpath('/' + rest).lstrip('/')}"
    return os.path.normpath(os.path.abspath(location.removeprefix("file://")))


def _refuse(param: str, value: str, allowed: Sequence[str], setting: str) -> None:
    raise AirflowFailException(
        f"{param} {value!r} is not allowed in this deployment ({setting}: {', '.join(allowed) or 'none'}); "
        "its operators decide what a DAG's Params may reach"
    )
