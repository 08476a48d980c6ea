"""Moves batches through their lifecycle: validating -> in_progress -> finalizing -> completed
(or failed / expired / cancelling -> cancelled), resumably: progress is saved after every chunk."""

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson

from ..batch_api import BatchStatus as S
from . import backends, messages, records
from .config import EmulatorConfig
from .errors import input_deleted, token_limit_error
from .faults import Faults
from .lifetimes import lifetime
from .records import CANCELLED, EXPIRED
from .store import Store
from .validate import validate_input
from .vendors import ANTHROPIC, BY_NAME, OPENAI

log = logging.getLogger("batchkit.emulator")

CHUNK_LINES = 2000


class Processor:
    """Advances every active batch a little on each tick; one instance per emulator process."""

    def __init__(self, store: Store, config: EmulatorConfig) -> None:
        self.store, self.config, self.faults = store, config, Faults(config)
        self.forwarder = (
            backends.Forwarder(config.upstream_url, config.upstream_api_key, config.upstream_concurrency)
            if config.backend == "forward"
            else None
        )
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            self._purge()
            # Batches advance side by side, as the real service runs many at once.
            await asyncio.gather(*(self._safe_step(batch_id) for batch_id in self.store.active_batch_ids()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.tick_seconds)

    def _purge(self) -> None:
        """Remove the files past their ``expires_at`` (records and bytes)."""
        try:
            if expired := self.store.purge_expired():
                log.info("expired %d file(s)", len(expired))
        except Exception:  # keep processing batches; the next tick purges again
            log.exception("purging expired files failed; will retry")

    async def _safe_step(self, batch_id: str) -> None:
        try:
            await self.step(batch_id)
        except Exception:  # keep serving other batches; the next tick retries this one
            log.exception("processing %s failed; will retry", batch_id)

    async def step(self, batch_id: str) -> None:
        found = self.store.get_batch(batch_id)
        if not found:
            return
        batch, progress = found
        now = time.time()
        status = batch["status"]
        if status in (S.VALIDATING, S.IN_PROGRESS) and self._due(batch, progress, now):
            await asyncio.to_thread(self._drain, batch, progress, EXPIRED)
            self._finish(batch, progress, S.EXPIRED)
        elif status == S.VALIDATING:
            if now - progress.get("created", batch["created_at"]) >= self.config.validation_seconds:
                await self._validate(batch, progress)
        elif status == S.IN_PROGRESS:
            await self._process_chunk(batch, progress)
        elif status == S.FINALIZING:
            self._finish(batch, progress, S.COMPLETED)
        elif status == S.CANCELLING:
            await asyncio.to_thread(self._drain, batch, progress, CANCELLED)
            self._finish(batch, progress, S.CANCELLED)

    @staticmethod
    def _due(batch: dict, progress: dict, now: float) -> bool:
        """Whether the batch expires now: its window has passed or, with no window (Azure), the ``expire`` fault
        has stopped it halfway."""
        if batch["expires_at"] is not None:
            return now >= batch["expires_at"]
        counts = batch["request_counts"]
        return progress.get("fault") == "expire" and counts["completed"] + counts["failed"] >= counts["total"] // 2

    async def _validate(self, batch: dict, progress: dict) -> None:
        if self.faults.fails_validation(batch["id"]):
            errors, total, model = [token_limit_error("injected fault")], 0, None
        else:
            try:  # the batch keeps its own link to the input: deleting the file later changes nothing
                path = await asyncio.to_thread(self._keep_input, batch)
            except FileNotFoundError:
                errors, total, model = [input_deleted(batch["input_file_id"])], 0, None
            else:
                vendor = BY_NAME[progress.get("vendor", OPENAI)]
                endpoint, limits = batch["endpoint"], vendor.limits(self.config)
                result = await asyncio.to_thread(validate_input, path, endpoint, limits, vendor.urls(endpoint))
                errors, total, model = result.errors, result.total, result.model
                progress["tokens"] = result.tokens
                enqueued = self.enqueued_tokens(vendor.name, model, batch["id"])
                limit = self.config.enqueued_token_limit
                if not errors and limit is not None and enqueued + result.tokens > limit:
                    errors = [token_limit_error(f"{enqueued:,} enqueued + {result.tokens:,} in this batch > {limit:,}")]
        current = self.store.get_batch(batch["id"])[0]
        if current["status"] == S.CANCELLING:
            return  # the cancel wins; the next tick finishes it
        now = int(time.time())
        if errors:
            batch.update(status=S.FAILED.value, failed_at=now, errors={"object": "list", "data": errors})
        else:
            batch.update(
                status=S.IN_PROGRESS.value,
                in_progress_at=now,
                model=model,
                request_counts={"total": total, "completed": 0, "failed": 0},
            )
            progress["fault"] = self.faults.batch_fault(batch["id"])
        self.store.save_batch(batch, progress)

    def enqueued_tokens(self, vendor: str, model: str | None, exclude: str) -> int:
        """Tokens of this vendor's and model's batches that are in progress: what OpenAI's enqueued-token limit
        counts (Anthropic batches mix models: theirs are counted together)."""
        total = 0
        for batch_id in self.store.active_batch_ids():
            other, progress = self.store.get_batch(batch_id)
            if (
                batch_id != exclude
                and other["status"] == S.IN_PROGRESS
                and progress.get("vendor", OPENAI) == vendor
                and other.get("model") == model
            ):
                total += progress.get("tokens", 0)
        return total

    async def _process_chunk(self, batch: dict, progress: dict) -> None:
        counts = batch["request_counts"]
        done = counts["completed"] + counts["failed"]
        fault = progress.get("fault")
        if fault == "stuck" or (fault == "expire" and done >= counts["total"] // 2):
            return  # makes no progress until cancelled or expired
        limit = CHUNK_LINES
        if self.config.seconds_per_request > 0:
            limit = max(1, int(self.config.tick_seconds / self.config.seconds_per_request))
        lines, next_offset = await asyncio.to_thread(self._read_lines, batch, progress["offset"], limit)
        if lines:
            results = await self._run_lines(batch, lines, progress.get("vendor", OPENAI))
            if self.config.seconds_per_request > 0:
                await asyncio.sleep(self.config.seconds_per_request * len(lines))
            await asyncio.to_thread(self._append_results, batch, progress, results)
            progress["offset"] = next_offset
        current = self.store.get_batch(batch["id"])[0]
        if current["status"] == S.CANCELLING:
            batch.update(status=S.CANCELLING.value, cancelling_at=current["cancelling_at"])
        elif counts["completed"] + counts["failed"] >= counts["total"]:
            batch.update(status=S.FINALIZING.value, finalizing_at=int(time.time()))
            self.wake()
        self.store.save_batch(batch, progress)

    def _keep_input(self, batch: dict) -> Path:
        """Hard-link the input file into the batch's work area, as the service keeps its own copy."""
        kept = self.work_path(batch["id"], "in")
        if not kept.exists():
            if self.store.get_file(batch["input_file_id"]) is None:  # deleted, or expired before validation
                raise FileNotFoundError(batch["input_file_id"])
            os.link(self.store.blob_path(batch["input_file_id"]), kept)
        return kept

    def _read_lines(self, batch: dict, offset: int, limit: int) -> tuple[list[dict], int]:
        lines = []
        with self.work_path(batch["id"], "in").open("rb") as source:
            source.seek(offset)
            while len(lines) < limit:
                raw = source.readline()
                if not raw:
                    break
                if raw.strip():
                    lines.append(orjson.loads(raw))
            return lines, source.tell()

    async def _run_lines(self, batch: dict, lines: list[dict], vendor: str) -> list[tuple[dict, backends.LineResult]]:
        injected = {}
        for index, line in enumerate(lines):
            if failure := self.faults.line_failure(batch["id"], line["custom_id"], vendor):
                injected[index] = backends.LineResult(failure.status, failure.body())
            elif vendor == ANTHROPIC and not BY_NAME[vendor].limits(self.config).accepts_model(line["body"]["model"]):
                injected[index] = messages.model_not_found(line["body"]["model"])
        if self.forwarder:
            pending = [injected.get(i) or self.forwarder.run(line["url"], line["body"]) for i, line in enumerate(lines)]
            results = await asyncio.gather(*(_as_coroutine(p) for p in pending))
        else:
            results = await asyncio.to_thread(self._echo_all, batch, lines, injected, vendor)
        return list(zip(lines, results))

    def _echo_all(self, batch: dict, lines: list[dict], injected: dict, vendor: str) -> list[backends.LineResult]:
        created = batch.get("in_progress_at") or batch["created_at"]
        echo, canonical = messages.echo if vendor == ANTHROPIC else backends.echo, BY_NAME[vendor].canonical
        return [
            injected.get(i)
            or echo(
                canonical(line["url"]),
                line["body"],
                f"{batch['id']}/{line['custom_id']}",
                created,
                self.config.embedding_dimensions,
                self.faults.invalid_output(batch["id"], line["custom_id"]),
            )
            for i, line in enumerate(lines)
        ]

    def _append_results(self, batch: dict, progress: dict, results: list[tuple[dict, backends.LineResult]]) -> None:
        out, err = [], []
        usage, vendor = batch["usage"], progress.get("vendor", OPENAI)
        for line, result in results:
            record = records.answered(vendor, batch["id"], line["custom_id"], result)
            if result.status_code == 200:
                out.append(record)
                records.add_usage(usage, result.body.get("usage") or {})
            else:
                err.append(record)
        batch["request_counts"]["completed"] += len(out)
        batch["request_counts"]["failed"] += len(err)
        progress["out_bytes"] = self._append(batch["id"], "out", progress["out_bytes"], out)
        progress["err_bytes"] = self._append(batch["id"], "err", progress["err_bytes"], err)

    def _drain(self, batch: dict, progress: dict, reason: tuple[str, str]) -> None:
        """Write every line not yet run to the error file with ``reason`` (expired or cancelled)."""
        if batch.get("request_counts", {}).get("total", 0) == 0:
            return
        lines, _ = self._read_lines(batch, progress["offset"], 10**9)
        vendor = progress.get("vendor", OPENAI)
        err = [records.unanswered(vendor, batch["id"], line["custom_id"], reason) for line in lines]
        batch["request_counts"]["failed"] += len(err)
        progress["unrun"] = len(err)
        progress["err_bytes"] = self._append(batch["id"], "err", progress["err_bytes"], err)
        progress["offset"] = self.work_path(batch["id"], "in").stat().st_size

    def work_path(self, batch_id: str, kind: str) -> Path:
        return self.store.work_dir / f"{batch_id}.{kind}"

    def _append(self, batch_id: str, kind: str, committed: int, records: list[bytes]) -> int:
        """Append records after the last committed byte (dropping anything a crash left past it)."""
        path = self.work_path(batch_id, kind)
        with path.open("ab") as handle:
            handle.truncate(committed)
            if records:
                handle.write(b"\n".join(records) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
            return handle.tell()

    def _finish(self, batch: dict, progress: dict, status: S) -> None:
        now, status = int(time.time()), S(status).value
        lives = lifetime(batch.get("output_expires_after"), self.config.file_expiry_scale)
        records.publish(self.store, self.work_path, batch, progress, progress.get("vendor", OPENAI), lives)
        batch.update(status=status, **{f"{status}_at": now})
        self.store.save_batch(batch, progress)
        self.work_path(batch["id"], "in").unlink(missing_ok=True)
        log.info("batch %s %s: %s", batch["id"], status, batch.get("request_counts"))

    def recover(self) -> None:
        """After a restart, cut partial result files back to their last committed size."""
        for batch_id in self.store.active_batch_ids():
            _, progress = self.store.get_batch(batch_id)
            for kind in ("out", "err"):
                path = self.work_path(batch_id, kind)
                if path.exists():
                    with path.open("ab") as handle:
                        handle.truncate(progress[f"{kind}_bytes"])

    async def close(self) -> None:
        if self.forwarder:
            await self.forwarder.close()


async def _as_coroutine(value: Any) -> Any:
    return (await value) if asyncio.iscoroutine(value) else value
