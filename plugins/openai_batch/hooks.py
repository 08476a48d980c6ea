"""OpenAI access for the batch pipeline, on top of apache-airflow-providers-openai's ``OpenAIHook``.

The connection is the provider's ``openai`` type: API key in the password, base URL in the host
(the local emulator by default in the demo, ``https://api.openai.com/v1`` for real OpenAI).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
from airflow.providers.openai.hooks.openai import OpenAIHook

from openai_batch.statuses import METADATA_KEY

if TYPE_CHECKING:
    from openai.types import Batch

TRANSIENT = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError, openai.InternalServerError)
# The SDK retries 408/409/429/5xx and connection errors with exponential backoff and jitter; a batch pipeline
# can afford more patience than its default of 2 retries. A connection's openai_client_kwargs still win.
CLIENT_DEFAULTS = {"max_retries": 6, "timeout": 300.0}
LOOKUP_MARGIN = 300  # seconds before a claim that a batch created under it may carry (clock skew)


class OpenAIBatchHook(OpenAIHook):
    """The provider's hook plus what idempotent batch pipelines need: find-by-key and streamed downloads."""

    hook_name = "OpenAI Batch"

    def _client_kwargs(self, conn: Any, extras: dict[str, Any]) -> dict[str, Any]:
        return {**CLIENT_DEFAULTS, **super()._client_kwargs(conn, extras)}

    def iter_batches_since(self, created_after: int) -> Iterator[Batch]:
        """Batches newest first, stopping at the first one created before ``created_after``."""
        for batch in self.conn.batches.list(limit=100):
            if batch.created_at < created_after:
                return
            yield batch

    def find_batch(self, key: str, since: float) -> Batch | None:
        """The newest batch (any status) tagged with ``key`` created after ``since`` (a UNIX time: the claim
        under which it would have been created, so the lookup pages back minutes, not days)."""
        for batch in self.iter_batches_since(int(since - LOOKUP_MARGIN)):
            if (batch.metadata or {}).get(METADATA_KEY) == key:
                return batch
        return None

    def create_batch_once(self, key: str, attempts: int = 3, **create: Any) -> Batch:
        """Create a batch tagged with ``key`` without ever creating two (``vendors.base.create_once``): the SDK
        does not retry the create; after a transient failure the key is looked up first."""
        from openai_batch.vendors.base import create_once

        client = self.conn.with_options(max_retries=0)
        return create_once(
            lambda: client.batches.create(**create), lambda since: self.find_batch(key, since), TRANSIENT, self.log, attempts
        )

    def submit_file(self, key: str, path: str | Path, upload: dict[str, Any] | None = None, **create: Any) -> Batch:
        """Upload a batch input file (local or remote, streamed; named after ``key``; ``upload``: more
        ``files.create`` arguments, e.g. ``expires_after``) and create its batch once (``create_batch_once``).
        Arguments whose value is None are left out."""
        from batchkit.storage import open_file

        name = str(path).rstrip("/").rsplit("/", 1)[-1]
        upload = {k: v for k, v in (upload or {}).items() if v is not None}
        with open_file(path) as handle:
            uploaded = self.conn.files.create(file=(f"{key}-{name}", handle), purpose="batch", **upload)
        create = {k: v for k, v in create.items() if v is not None}
        batch = self.create_batch_once(key, input_file_id=uploaded.id, **create)
        self.log.info("created batch %s from %s (file %s)", batch.id, name, uploaded.id)
        return batch

    def download(self, file_id: str, target: Path, attempts: int = 4, chunk_bytes: int = 1 << 20) -> int:
        """Stream a file's content to ``target`` in chunks (atomic rename), retrying transient failures.

        :returns: bytes written.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        for attempt in range(1, attempts + 1):
            try:
                size = 0
                with self.conn.files.with_streaming_response.content(file_id) as response, partial.open("wb") as out:
                    for chunk in response.iter_bytes(chunk_bytes):
                        out.write(chunk)
                        size += len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                partial.replace(target)
                return size
            except TRANSIENT as exc:
                if attempt == attempts:
                    raise
                self.log.warning(
                    "download of %s failed (%s); retry %d/%d", file_id, type(exc).__name__, attempt, attempts - 1
                )
                time.sleep(min(2**attempt, 30))
        raise AssertionError("unreachable")
