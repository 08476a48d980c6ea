"""Azure OpenAI global batch on the v1 API: OpenAI's shapes at ``https://<resource>.openai.azure.com/openai/v1/``
(``files``, ``batches``; no ``api-version``), the key in an ``api-key`` header, ``model`` = the Global-Batch
**deployment name**. It differs from OpenAI only in data: 100,000 requests per file, batches that run past 24 h
(Azure does not expire them), the enqueued-token quota (a failed batch with ``token_limit_exceeded``, as OpenAI's),
file lifetimes of 14 to 30 days (``expires_after`` and ``output_expires_after``; without them Azure keeps batch files
until they are deleted, at most 500 of them per resource).

The connection is an ``openai`` one whose host is the resource (``https://my-res.openai.azure.com`` or its
``/openai/v1/`` URL), or any ``openai`` connection with ``{"vendor": "azure"}`` in its extra. Extra
``max_batch_hours`` (default 168): how long the pipeline waits for one batch before it cancels it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from openai_batch.hooks import OpenAIBatchHook
from openai_batch.vendors.base import Limits
from openai_batch.vendors.openai import OpenAIVendor

V1_PATH = "/openai/v1/"
MAX_BATCH_HOURS = 168  # a batch still running after a week is cancelled (its answered lines are kept)


def v1_base_url(base_url: str | None) -> str | None:
    """The v1 API's base URL of a resource URL: ``https://r.openai.azure.com`` -> ``.../openai/v1/`` (a URL that
    already names a path is kept)."""
    if not base_url:
        return base_url
    stripped = base_url.rstrip("/")
    has_path = stripped.split("://", 1)[-1].count("/") > 0  # the v1 path, a gateway's or the emulator's: kept
    return stripped + "/" if has_path else stripped + V1_PATH


class AzureBatchHook(OpenAIBatchHook):
    """``OpenAIBatchHook`` for an Azure OpenAI resource: the v1 base URL and the key in the ``api-key`` header
    (sent as a bearer token too, which the v1 API also takes)."""

    hook_name = "Azure OpenAI Batch"

    def _client_kwargs(self, conn: Any, extras: dict[str, Any]) -> dict[str, Any]:
        kwargs = super()._client_kwargs(conn, extras)
        kwargs["base_url"] = v1_base_url(kwargs.get("base_url"))
        if isinstance(kwargs.get("api_key"), str):
            kwargs["default_headers"] = {**(kwargs.get("default_headers") or {}), "api-key": kwargs["api_key"]}
        return kwargs


class AzureOpenAIVendor(OpenAIVendor):
    """Azure OpenAI global batch: the OpenAI adapter with Azure's limits, client and no expiry."""

    name = "azure"
    price_vendor = "azure"
    title = "Azure OpenAI"
    conn_types: ClassVar[tuple[str, ...]] = ()  # an ``openai`` connection on an Azure host (see ``vendors``)
    limits = Limits(
        max_requests=100_000,
        max_bytes=200 * 1000 * 1000,
        expires=False,
        max_runtime=timedelta(hours=MAX_BATCH_HOURS),
        queue_full="a failed batch whose errors are token_limit_exceeded (the deployment's enqueued-token quota)",
        lifetimes=(1_209_600, 2_592_000),  # "a number between 1209600-2592000", i.e. 14 to 30 days (the batch guide)
    )

    hook_class = AzureBatchHook

    def check_model(self, model: str) -> None:
        """Azure's models API lists base models, not deployments: the deployment is checked when the batch is
        validated (an unknown one fails the batch at once, before anything runs)."""
        self.hook.log.info("Azure OpenAI: deployment %r is checked when its batch is validated", model)

    def deadline(self, created_at: float, window: timedelta) -> float | None:
        hours = float(self.extra.get("max_batch_hours") or MAX_BATCH_HOURS)
        return created_at + hours * 3600

    def batch_url(self, batch_id: str) -> str:
        """No page per batch in the Azure portal: the batch's JSON on a non-Azure base URL (the emulator)."""
        from openai_batch.links import base_url_of
        from openai_batch.vendors import AZURE_HOSTS

        base = v1_base_url(base_url_of(self.connection)) or ""
        host = base.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
        return "" if host.endswith(AZURE_HOSTS) else f"{base.rstrip('/')}/batches/{batch_id}"
