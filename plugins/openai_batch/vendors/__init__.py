"""Batch vendors by name, and which one an Airflow connection means.

Built in: ``openai`` (OpenAI and OpenAI-compatible APIs such as the emulator), ``azure`` (Azure OpenAI global batch,
v1 API) and ``anthropic`` (Anthropic Message Batches). A third party adds one with a ``BatchVendor`` subclass
(``vendors.base``) registered under the entry point group ``openai_batch.vendors``::

    [project.entry-points."openai_batch.vendors"]
    mistral = "my_package.mistral:MistralVendor"

A connection names its vendor (the first rule that applies):

1. its extra's ``vendor`` (``{"vendor": "azure"}``), any registered name;
2. its connection type: ``anthropic`` (apache-airflow-providers-anthropic) -> ``anthropic``, or a registered vendor's
   ``conn_types``;
3. an ``openai`` connection whose base URL is on Azure (``*.openai.azure.com``, ``*.cognitiveservices.azure.com``,
   ``*.services.ai.azure.com``) -> ``azure``;
4. else ``openai``.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from openai_batch.vendors.base import BatchVendor

ENTRY_POINT_GROUP = "openai_batch.vendors"
BUILTIN = {
    "openai": "openai_batch.vendors.openai:OpenAIVendor",
    "azure": "openai_batch.vendors.azure:AzureOpenAIVendor",
    "anthropic": "openai_batch.vendors.anthropic:AnthropicVendor",
}
AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")


class UnknownVendor(ValueError):
    """A connection or caller named a vendor nobody registered."""


@cache
def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def vendor_names() -> list[str]:
    """Every vendor that can be named: the built-in ones, then those of installed packages."""
    return [*BUILTIN, *sorted(set(_entry_points()) - set(BUILTIN))]


def vendor_class(name: str) -> type[BatchVendor]:
    """The adapter class registered as ``name`` (built-in names cannot be replaced by an entry point)."""
    if name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        return getattr(import_module(module), attr)
    found = _entry_points().get(name)
    if found is None:
        raise UnknownVendor(f"no batch vendor {name!r}; known: {', '.join(vendor_names())}")
    return found.load()


def vendor_name_of(conn: Any, extra: dict[str, Any] | None = None) -> str:
    """Which vendor the connection ``conn`` (with its ``extra``, default: read from it) means (see the module's
    rules)."""
    extra = (conn.extra_dejson if extra is None else extra) or {}
    named = str(extra.get("vendor") or "").strip().lower()
    if named:
        if named not in vendor_names():
            raise UnknownVendor(
                f"connection {conn.conn_id!r} names vendor {named!r}; known: {', '.join(vendor_names())}"
            )
        return named
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "anthropic":
        return "anthropic"
    if conn_type == "openai" or not conn_type:
        base = (extra.get("openai_client_kwargs") or {}).get("base_url") or conn.host or ""
        host = urlsplit(base if "://" in base else f"https://{base}").hostname or ""
        return "azure" if host.endswith(AZURE_HOSTS) else "openai"
    for name in vendor_names():
        if conn_type in getattr(vendor_class(name), "conn_types", ()):
            return name
    raise UnknownVendor(
        f"connection {conn.conn_id!r} is of type {conn_type!r}, which no batch vendor takes: use an openai or "
        f"anthropic connection, or name the vendor in its extra ({{\"vendor\": ...}}; known: {', '.join(vendor_names())})"
    )


def for_connection(conn_id: str) -> BatchVendor:
    """The adapter of the Airflow connection ``conn_id`` (read now, on a worker)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extra = dict(conn.extra_dejson or {})
    return vendor_class(vendor_name_of(conn, extra))(conn_id, conn, extra)


async def afor_connection(conn_id: str) -> BatchVendor:
    """The adapter of ``conn_id``, the connection read without blocking the event loop (triggerer)."""
    from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

    conn = await get_async_connection(conn_id)
    extra = await get_async_extra_dejson(conn)  # extra_dejson would block on the supervisor: a deadlock here
    return vendor_class(vendor_name_of(conn, extra))(conn_id, conn, extra)
