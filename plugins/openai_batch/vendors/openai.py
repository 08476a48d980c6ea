"""OpenAI's Batch API: the Files API for the requests, ``/v1/batches`` for the batch; the pipeline's own shapes, so
nothing is converted. The engine is ``hooks.OpenAIBatchHook`` (the provider's hook, plus find-by-key,
create-once and streamed downloads)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from batchkit.batch_api import MAX_BYTES, MAX_REQUESTS
from openai_batch.vendors.base import BatchVendor, CreateRefused, Gone, Limits, ModelMissing

if TYPE_CHECKING:
    from openai.types import Batch

    from openai_batch.hooks import OpenAIBatchHook
    from openai_batch.retention import Lifetimes

DELETE_RETRIES = 2  # a file deletion is best effort: it expires on its own


class OpenAIVendor(BatchVendor):
    """OpenAI (and any OpenAI-compatible Batch API, such as the bundled emulator): an ``openai`` connection, API
    key in the password, base URL in the host."""

    name = "openai"
    title = "OpenAI"
    conn_types: ClassVar[tuple[str, ...]] = ("openai",)
    limits = Limits(
        max_requests=MAX_REQUESTS,
        max_bytes=MAX_BYTES,
        queue_full="a failed batch whose errors are token_limit_exceeded; 429 on create",
    )

    hook_class: ClassVar[type[OpenAIBatchHook] | None] = None  # None: OpenAIBatchHook

    @cached_property
    def hook(self) -> OpenAIBatchHook:
        from openai_batch.hooks import OpenAIBatchHook

        return (self.hook_class or OpenAIBatchHook)(conn_id=self.conn_id)

    def check_model(self, model: str) -> None:
        import openai

        try:
            self.hook.conn.models.retrieve(model)
        except openai.NotFoundError:
            raise ModelMissing(model) from None

    def submit(
        self,
        key: str,
        path: str,
        *,
        requests: int,
        endpoint: str,
        owned: Callable[[], set[str]] | None = None,
        pending: Callable[[], bool] | None = None,
        lifetimes: Lifetimes | None = None,
        **create: Any,
    ) -> Batch:
        import openai

        upload = {}
        if lifetimes is not None:
            upload = {"expires_after": self.expiry(lifetimes.files, self.hook.log)}
            create["output_expires_after"] = self.expiry(lifetimes.outputs, self.hook.log)
        try:
            return self.hook.submit_file(key, path, upload=upload, endpoint=endpoint, **create)
        except openai.RateLimitError as exc:
            raise CreateRefused(exc.message) from exc

    def get_batch(self, batch_id: str) -> Batch:
        import openai

        try:
            return self.hook.get_batch(batch_id)
        except openai.NotFoundError as exc:
            raise Gone(f"{self.title} has no batch {batch_id}") from exc

    def cancel_batch(self, batch_id: str) -> Any:
        return self.hook.cancel_batch(batch_id)

    def iter_batches_since(self, created_after: int) -> Iterator[Batch]:
        return self.hook.iter_batches_since(created_after)

    def find_batch(
        self,
        key: str,
        since: float,
        *,
        requests: int | None = None,
        owned: Callable[[], set[str]] | None = None,
        pending: Callable[[], bool] | None = None,
    ) -> Batch | None:
        return self.hook.find_batch(key, since)

    def download(self, batch: Batch, folder: Path, name: str, requests_file: str, key: str) -> list[tuple[str, Path]]:
        written = []
        for kind, file_id in (("outputs", batch.output_file_id), ("errors", batch.error_file_id)):
            if file_id:
                size = self._download(file_id, folder / kind / name)
                self.hook.log.info("downloaded file %s of %s (%d bytes)", file_id, batch.id, size)
                written.append((kind, folder / kind / name))
        return written

    def download_input(self, batch: Batch, path: Path) -> Path:
        self._download(batch.input_file_id, path)
        return path

    def _download(self, file_id: str, path: Path) -> int:
        import openai

        try:
            return self.hook.download(file_id, path)
        except openai.NotFoundError as exc:
            raise Gone(f"{self.title} has no file {file_id} (deleted or expired)") from exc

    def forget(self, batch: Batch, log: Any) -> list[str]:
        """Delete the batch's input, output and error files (the batch object itself cannot be deleted)."""
        import openai

        from openai_batch.retention import delete_each

        files = self.hook.conn.with_options(max_retries=DELETE_RETRIES).files
        ids = [batch.input_file_id, batch.output_file_id, batch.error_file_id]
        deletes = {f"file {file_id}": (lambda f=file_id: files.delete(f)) for file_id in dict.fromkeys(ids) if file_id}
        return delete_each(self.title, deletes, (openai.NotFoundError,), log)

    def batch_url(self, batch_id: str) -> str:
        from openai_batch.links import base_url_of, batch_url

        return batch_url(base_url_of(self.connection), batch_id)

    async def aclient(self) -> Any:
        return await self.hook.aget_conn()

    def status_path(self, batch_id: str) -> str:
        return f"batches/{batch_id}"

    async def araw_status(self, client: Any, batch_id: str) -> bytes:
        import openai

        from openai_batch.polling import PollGone

        try:
            return (await client.batches.with_raw_response.retrieve(batch_id)).content
        except openai.NotFoundError as exc:
            raise PollGone(f"HTTP 404 polling batch {batch_id}") from exc

    async def acancel(self, client: Any, batch_id: str) -> None:
        await client.batches.cancel(batch_id)

