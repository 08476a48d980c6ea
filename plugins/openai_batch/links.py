"""The "OpenAI batch" link of the submit and wait tasks (the batch where its vendor shows it: platform.openai.com for
OpenAI, the batch's JSON for any other OpenAI-compatible base URL such as the emulator; each vendor adapter decides,
``BatchVendor.batch_url``) and the "Run report" link of the report task.

Airflow 3 evaluates a link on the worker at the end of every run of the task, a deferral included, and stores the
URL as an XCom (``_link_OpenAIBatchLink``); the API server only reads that XCom (``XComOperatorLink``). So the
operators list the link in ``operator_extra_links`` and no plugin registers it: a plugin's link would be called on
the API server with the serialized task, which has no batch id. The provider lists it under ``extra-links``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

OPENAI_API_HOST = "api.openai.com"
PLATFORM_BATCHES = "https://platform.openai.com/batches/"


def batch_url(base_url: str | None, batch_id: str) -> str:
    """Where to look at ``batch_id`` for a client of ``base_url`` (None: the SDK's default, OpenAI). Credentials,
    query and fragment of the base URL are left out."""
    parts = urlsplit(base_url or "")
    if not base_url or parts.hostname == OPENAI_API_HOST:
        return PLATFORM_BATCHES + batch_id
    base = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="").geturl()
    return f"{base.rstrip('/')}/batches/{batch_id}"


def base_url_of(conn: Any) -> str | None:
    """The base URL the provider's ``OpenAIHook`` gives its client: ``openai_client_kwargs.base_url``, else the
    connection's host (the API key is never read)."""
    return (conn.extra_dejson.get("openai_client_kwargs") or {}).get("base_url") or conn.host or None


class OpenAIBatchLink(BaseOperatorLink):
    """Opens the task's batch: the operator's ``batch_id`` (rendered) where its ``conn_id``'s vendor shows it; empty
    until known, or when the vendor has no page for it."""

    name = "OpenAI batch"  # its XCom key and the UI's label stay for every vendor

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        batch_id = getattr(operator, "batch_id", None)
        if not isinstance(batch_id, str) or not batch_id:
            return ""
        from openai_batch.vendors import for_connection

        return for_connection(operator.conn_id).batch_url(batch_id)


class RunReportLink(BaseOperatorLink):
    """Opens the run's report: the operator's ``report_url`` once written (``file://`` for local staging)."""

    name = "Run report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url = getattr(operator, "report_url", None)
        if not isinstance(url, str) or not url:
            return ""
        return url if "://" in url else f"file://{url}"
