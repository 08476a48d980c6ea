"""Anthropic Message Batches: ``POST /v1/messages/batches`` with the requests inline (``{custom_id, params}``; no file
upload), results as JSONL from ``results_url`` in no particular order, no metadata on a batch.

The connection is apache-airflow-providers-anthropic's ``anthropic`` type (API key in the password, base URL in the
host). Extra: ``default_max_tokens`` (1024; Anthropic requires ``max_tokens``, used for requests that set none),
``structured_outputs`` (``auto``/``native``/``tool``), ``sampling`` (``drop``/``send``: the SDK's API version
refuses temperature, top_p and top_k, so they are left out by default, with a warning).

Exactly once without metadata: custom_ids carry the batch key's first 8 characters (``anthropic_convert.safe_id``),
and a lost create is found by listing the batches created since the claim (minus 5 minutes) whose request total
equals the file's and that no other claim of the ledger names; an ended one is confirmed by the tag of its
results' first line. Residual risk: two creates of the same size in one workspace within minutes, both unanswered
and unrecorded, where the first found is still running: it is adopted unconfirmed, and if it was the other's,
its results are refused at download (tag mismatch) and the run stops naming it, rather than loading wrong answers.

Retention: a message batch has no files and no expiry setting; its results stay downloadable for 29 days after its
creation. ``forget`` deletes the ended batch (and its results) once they are recorded; a deleted batch answers 404,
and the pipeline then reads what the ledger recorded of it (``retention.batch_or_recorded``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from batchkit.batch_api import Endpoint
from batchkit.errors import InputError
from openai_batch.vendors.anthropic_body import RequestsBody
from openai_batch.vendors.anthropic_convert import CUSTOM_ID, Converter, batch_view, hashed, our_id, output_line
from openai_batch.vendors.base import LOOKUP_MARGIN, BatchVendor, CreateRefused, Gone, Limits, ModelMissing, create_once
from openai_batch.vendors.errors import LookupAmbiguous

if TYPE_CHECKING:
    from openai.types import Batch

MAX_BODY_BYTES = 256 * 1000 * 1000  # Anthropic's limit on one create request


class AnthropicVendor(BatchVendor):
    name = "anthropic"
    price_vendor = "anthropic"
    title = "Anthropic"
    conn_types: ClassVar[tuple[str, ...]] = ("anthropic",)
    limits = Limits(
        max_requests=100_000,
        max_bytes=240 * 1000 * 1000,  # of the split's lines: converted, the create body stays under 256 MB
        custom_id=CUSTOM_ID,
        completion_windows=(),
        queue_full="429 on create (rate or queue limits)",
        embeddings=False,
        metadata=False,
        endpoints=(Endpoint.CHAT.value, Endpoint.RESPONSES.value),
        lifetimes=None,  # no files; results are kept 29 days after the batch's creation, or until it is deleted
    )

    @cached_property
    def hook(self) -> Any:
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

        hook = AnthropicHook(conn_id=self.conn_id)
        if hook.platform not in ("anthropic", "aws"):
            raise InputError(f"connection {self.conn_id!r}: platform {hook.platform!r} has no Message Batches API")
        return hook

    @cached_property
    def client(self) -> Any:
        return self.hook.get_conn().with_options(max_retries=6, timeout=300.0)

    @cached_property
    def converter(self) -> Converter:
        extra = self.extra
        return Converter(
            default_max_tokens=int(extra.get("default_max_tokens") or 1024),
            structured=str(extra.get("structured_outputs") or "auto"),
            sampling=str(extra.get("sampling") or "drop"),
        )

    @property
    def transient(self) -> tuple[type[BaseException], ...]:
        import anthropic

        return (anthropic.APIConnectionError, anthropic.APITimeoutError, anthropic.RateLimitError, anthropic.InternalServerError)

    def check_model(self, model: str) -> None:
        import anthropic

        try:
            self.client.models.retrieve(model)
        except anthropic.NotFoundError:
            raise ModelMissing(model) from None

    def check_request(self, line: dict[str, Any]) -> None:
        super().check_request(line)
        self.converter.params(line)
        if self.converter.dropped:
            self.hook.log.warning(
                "Anthropic: %s left out of every request (the API refuses sampling parameters; connection extra "
                '"sampling": "send" sends them)',
                ", ".join(sorted(self.converter.dropped)),
            )

    def submit(
        self,
        key: str,
        path: str,
        *,
        requests: int,
        endpoint: str,
        owned: Callable[[], set[str]] | None = None,
        pending: Callable[[], bool] | None = None,
        **_: Any,
    ) -> Batch:
        import anthropic
        from anthropic.types.messages import MessageBatch

        body = RequestsBody(path, key, self.converter)
        size, count = body.measure()
        if count != requests:
            raise InputError(f"{path} holds {count} requests, not the {requests} the split wrote")
        if size > MAX_BODY_BYTES:
            raise InputError(f"{path} converts to {size / 1e6:.1f} MB, over Anthropic's 256 MB per batch")
        client = self.client.with_options(max_retries=0)
        headers = {"Content-Type": "application/json", "Content-Length": str(size)}

        def create() -> Batch:
            made = client.post("/v1/messages/batches", cast_to=MessageBatch, content=body, options={"headers": headers})
            return self._view(made)

        def find(since: float) -> Batch | None:
            return self.find_batch(key, since, requests=requests, owned=owned, pending=pending)

        try:
            batch = create_once(create, find, self.transient, self.hook.log)
        except anthropic.RateLimitError as exc:
            raise CreateRefused(exc.message) from exc
        self.hook.log.info("created message batch %s from %s (%d requests, %.1f MB)", batch.id, path, count, size / 1e6)
        return batch

    def get_batch(self, batch_id: str) -> Batch:
        import anthropic

        try:
            return self._view(self.client.messages.batches.retrieve(batch_id))
        except anthropic.NotFoundError as exc:
            raise Gone(f"{self.title} has no message batch {batch_id}") from exc

    def cancel_batch(self, batch_id: str) -> Batch:
        return self._view(self.client.messages.batches.cancel(batch_id))

    def iter_batches_since(self, created_after: int) -> Iterator[Batch]:
        for made in self.client.messages.batches.list(limit=100):  # newest first, page after page
            batch = self._view(made)
            if batch.created_at < created_after:
                return
            yield batch

    def find_batch(
        self,
        key: str,
        since: float,
        *,
        requests: int | None = None,
        owned: Callable[[], set[str]] | None = None,
        pending: Callable[[], bool] | None = None,
    ) -> Batch | None:
        """The batch a lost create of ``key`` made: created since ``since`` (minus the skew margin), of
        ``requests`` requests, named by no other claim (``owned``); an ended one only when its results carry the
        key's tag; a running one (unconfirmable) only when it is the only candidate and no other claim is creating
        its batch right now (``pending``: it could be theirs). Else, or with several running candidates,
        ``LookupAmbiguous`` (their results tell once they end)."""
        others = owned() if owned else set()
        found = [
            b
            for b in self.iter_batches_since(int(since - LOOKUP_MARGIN))
            if b.request_counts.total == requests and b.id not in others
        ]
        running = [b for b in found if b.status not in ("completed", "cancelled", "expired")]
        for batch in (b for b in found if b not in running):
            if self._first_result_tag(batch.id) == key[:8]:
                return batch
        if not running:
            return None
        if pending is not None and pending():  # another claim's create in flight could have made any of them
            raise LookupAmbiguous(
                f"{len(running)} running batch(es) of {requests} requests could be the one created for key {key}, "
                "but another claim of the partition is still creating its batch"
            )
        if len(running) > 1:
            raise LookupAmbiguous(
                f"{len(running)} running batches of {requests} requests ({', '.join(b.id for b in running)}) could "
                f"be the one created for key {key}; this task adopts the right one once they have ended"
            )
        self.hook.log.warning("adopting running batch %s for key %s unconfirmed (no metadata)", running[0].id, key)
        return running[0]

    def download(self, batch: Batch, folder: Path, name: str, requests_file: str, key: str) -> list[tuple[str, Path]]:
        import anthropic

        by_hash: dict[str, str] = {}

        def hashes() -> dict[str, str]:
            if not by_hash:
                from batchkit.split.batch_inputs import fingerprints

                by_hash.update((hashed(custom_id), custom_id) for custom_id in fingerprints(requests_file))
            return by_hash

        paths = {kind: folder / kind / name for kind in ("outputs", "errors")}
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        counts = dict.fromkeys(paths, 0)
        try:
            self._write_results(batch, paths, counts, key, hashes)
        except anthropic.NotFoundError as exc:
            raise Gone(f"{self.title} has no results of {batch.id} (deleted)") from exc
        self.hook.log.info("downloaded the results of %s: %d ok, %d other", batch.id, counts["outputs"], counts["errors"])
        return [(kind, path) for kind, path in paths.items() if counts[kind]]

    def _write_results(
        self, batch: Batch, paths: dict[str, Path], counts: dict[str, int], key: str, hashes: Callable[[], dict[str, str]]
    ) -> None:
        with (
            self.client.messages.batches.with_streaming_response.results(batch.id) as response,
            paths["outputs"].open("wb") as outputs,
            paths["errors"].open("wb") as errors,
        ):
            files = {"outputs": outputs, "errors": errors}
            for text in response.iter_lines():
                if not text.strip():
                    continue
                raw = orjson.loads(text)
                kind, line = output_line(raw, our_id(raw["custom_id"], key, hashes), batch.created_at)
                files[kind].write(orjson.dumps(line) + b"\n")
                counts[kind] += 1

    def forget(self, batch: Batch, log: Any) -> list[str]:
        """Delete the ended message batch, its results with it (the requests were inline: no file)."""
        import anthropic

        from openai_batch.retention import delete_each

        batches = self.client.with_options(max_retries=2).messages.batches
        deletes = {f"message batch {batch.id}": lambda: batches.delete(batch.id)}
        return delete_each(self.title, deletes, (anthropic.NotFoundError,), log)

    def _first_result_tag(self, batch_id: str) -> str | None:
        import anthropic

        try:
            with self.client.messages.batches.with_streaming_response.results(batch_id) as response:
                for text in response.iter_lines():
                    if text.strip():
                        return str(orjson.loads(text).get("custom_id", ""))[:8]
        except anthropic.NotFoundError:  # deleted meanwhile: recorded by a claim, so not a lost create's
            return None
        return None

    def batch_url(self, batch_id: str) -> str:
        from openai_batch.links import batch_url

        base = (self.extra.get("anthropic_client_kwargs") or {}).get("base_url") or self.connection.host or ""
        return "" if not base or "api.anthropic.com" in base else batch_url(f"{base.rstrip('/')}/v1/messages", batch_id)

    @staticmethod
    def _view(made: Any) -> Batch:
        from openai.types import Batch

        return Batch.model_validate(batch_view(made.model_dump(mode="json")))

    # Triggerer side
    async def aclient(self) -> Any:
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

        return await AnthropicHook(conn_id=self.conn_id).get_async_conn()

    def status_path(self, batch_id: str) -> str:
        return f"v1/messages/batches/{batch_id}"

    def batch_view(self, raw: dict[str, Any]) -> dict[str, Any]:
        return batch_view(raw)

    async def araw_status(self, client: Any, batch_id: str) -> bytes:
        import anthropic

        from openai_batch.polling import PollGone, PollRefused

        try:
            return (await client.messages.batches.with_raw_response.retrieve(batch_id)).content
        except self.transient as exc:
            raise PollRefused(type(exc).__name__) from exc
        except anthropic.NotFoundError as exc:
            raise PollGone(f"HTTP 404 polling message batch {batch_id}") from exc

    async def acancel(self, client: Any, batch_id: str) -> None:
        await client.messages.batches.cancel(batch_id)

