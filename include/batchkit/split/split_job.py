"""Record batches to request lines for one split: prepared on two worker threads, committed in input order.

Preparing (prompts, skipped rows, UTF-8 checks, lines, fingerprints) only reads its batch; committing (rows
file, ledger counts, batch files) happens in the order the batches were read, so the output, the skipped-row
examples and the first error are the same as a one-thread split's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..results.arrow_numpy import flags, int64s, numbers, text_scalar, valid
from . import tokens
from .answered import Answered
from .images import image_cells
from .lines import RequestLines
from .manifest import SkippedRows
from .requests import RequestShape
from .source import SourceFile
from .template import PromptTemplate
from .text_columns import as_text, check_utf8

if TYPE_CHECKING:
    from .batchfiles import FileWriter, RowsWriter
    from .split_config import SplitConfig

MAX_SKIPPED_EXAMPLES = 20
PROMPT_MISSING = "prompt is null or empty"
WORKERS = 2  # record batches prepared at once (Arrow and numpy work releases the GIL)


@dataclass
class Prepared:
    """One record batch's requests, before anything is written."""

    file: SourceFile
    start: int
    batch: pa.RecordBatch
    keep: np.ndarray  # per row: has a prompt
    all_ids: pa.Array  # custom_id of every row
    ids: pa.Array  # of the kept rows
    prompts: pa.Array  # of the kept rows
    lines: RequestLines  # of the kept rows
    prints: list[str]  # of the kept rows
    image_tokens: np.ndarray  # of the kept rows: their images' estimated tokens
    reasons: dict[int, str]  # row -> why it is skipped, when not for its prompt (an image cell)


@dataclass
class SplitJob:
    """What turns record batches into request lines for one split."""

    template: PromptTemplate | None
    config: SplitConfig
    shape: RequestShape
    writer: FileWriter
    rows: RowsWriter
    answered: Answered
    skipped: SkippedRows = field(default_factory=SkippedRows)
    reuse: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("new", "changed", "retried", "reused"), 0))
    rows_written: int = 0  # rows committed to the rows file so far
    kept_written: int = 0  # of them, rows with a prompt
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="batchkit-prepare")
    )

    def prepared(self, file: SourceFile, batches: Iterator[tuple[int, pa.RecordBatch]]) -> Iterator[Prepared]:
        """``batches`` prepared ahead on the worker threads, yielded in input order (an error when its turn comes)."""
        pending: deque[Future] = deque()
        try:
            for start, batch in batches:
                pending.append(self._pool.submit(self._prepare, file, start, batch))
                if len(pending) > WORKERS:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # stopped early (an error): nothing keeps running behind the caller
            for future in pending:
                future.cancel()
            wait(pending)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)

    def _prepare(self, file: SourceFile, start: int, batch: pa.RecordBatch) -> Prepared:
        try:
            return self._build(file, start, batch)
        except pa.ArrowInvalid:
            # The text is validated as a whole; only when that fails pay for locating the bad row.
            names = [*(self.template.columns if self.template else [self.config.prompt_column]), self.config.id_column]
            names += self.config.image_columns or []
            for name in dict.fromkeys(n for n in names if n):
                check_utf8(batch.column(name), file, start, name)
            raise

    def _build(self, file: SourceFile, start: int, batch: pa.RecordBatch) -> Prepared:
        config = self.config
        if self.template:
            prompts = self.template.render({c: as_text(batch.column(c), file, c) for c in self.template.columns})
        else:
            prompts = as_text(batch.column(config.prompt_column), file, config.prompt_column)
        keep = valid(prompts) & (numbers(pc.binary_length(prompts)) > 0) & ~flags(pc.utf8_is_space(prompts))
        images = [image_cells(batch.column(name), name) for name in config.image_columns or []]
        reasons: dict[int, str] = {}
        for cells in images:  # a row is skipped for its first unusable image cell
            for row, reason in cells.reasons.items():
                if keep[row]:
                    keep[row], reasons[row] = False, reason
        rows = np.flatnonzero(keep)
        if config.id_column:
            all_ids = as_text(batch.column(config.id_column), file, config.id_column)
        else:
            positions = int64s(np.arange(start, start + batch.num_rows)).cast(pa.large_string())
            all_ids = pc.binary_join_element_wise(text_scalar(f"{file.index}-"), positions, text_scalar(""))
        ids = all_ids
        if len(rows) < batch.num_rows:
            prompts, ids = prompts.take(int64s(rows)), all_ids.take(int64s(rows))
        prompts.validate(full=True)  # the bytes are copied as they are: invalid UTF-8 raises ArrowInvalid here
        all_ids.validate(full=True)
        urls = [cells.urls.take(int64s(rows)) for cells in images]
        for url in urls:
            url.validate(full=True)
        lines = RequestLines.build(self.shape, ids, prompts, urls)
        image_tokens = np.zeros(len(rows), np.int64)
        for cells in images:
            image_tokens += tokens.image_tokens(
                config.model, config.image_detail, cells.width[rows], cells.height[rows]
            )
        return Prepared(
            file, start, batch, keep, all_ids, ids, prompts, lines, lines.fingerprints(), image_tokens, reasons
        )

    def commit(self, ready: Prepared) -> None:
        """Write one prepared batch: its rows, then the requests the ledger has no answer for."""
        config, shape, batch = self.config, self.shape, ready.batch
        rows = np.flatnonzero(ready.keep)
        offset, kept = self.rows_written, self.kept_written  # where this batch's rows begin in the rows file
        self.rows_written, self.kept_written = offset + batch.num_rows, kept + len(rows)
        row_prints: list[str | None] = ready.prints
        skipped: list[str | None] | None = None
        if len(rows) < batch.num_rows:
            skipped = self._record_skipped(ready)
            row_prints = [None] * batch.num_rows
            for row, value in zip(rows.tolist(), ready.prints):
                row_prints[row] = value
        self.rows.write(batch, ready.all_ids, row_prints, skipped)
        lines, prompts, image_tokens = ready.lines, ready.prompts, ready.image_tokens
        send = self._not_answered(ready.ids, ready.prints)
        ranks = np.arange(len(rows)) if send is None else send  # among the batch's rows with a prompt
        if send is not None:
            rows, lines, prompts, image_tokens = (
                rows[send],
                lines.take(send),
                prompts.take(int64s(send)),
                image_tokens[send],
            )
        if not len(rows):
            return
        if config.exact_tokens:
            estimates = tokens.exact_tokens(prompts, config.model, shape.fixed_text)
        else:
            estimates = tokens.heuristic_tokens(prompts, len(shape.fixed_text))
        estimates = estimates + image_tokens
        self.writer.write_rows(ready.file, ready.start, rows, lines, estimates, offset + rows, kept + ranks)

    def _not_answered(self, ids: pa.Array, prints: list[str]) -> np.ndarray | None:
        """Positions of the requests to send (None: all); counts new, changed, retried and reused requests."""
        if not self.answered:
            self.reuse["new"] += len(prints)
            return None
        kinds = self.answered.kinds(ids.to_pylist(), prints)
        for kind, count in zip(*np.unique(kinds, return_counts=True)):
            self.reuse[str(kind)] += int(count)
        send = np.flatnonzero(kinds != "reused")
        return None if len(send) == len(prints) else send.astype(np.int64)

    def _record_skipped(self, ready: Prepared) -> list[str | None]:
        """Count the batch's skipped rows by reason, keep the first examples; each row's reason (None: sent)."""
        dropped = np.flatnonzero(~ready.keep).tolist()
        self.skipped.count += len(dropped)
        reasons: list[str | None] = [None] * ready.batch.num_rows
        for row in dropped:
            reasons[row] = reason = ready.reasons.get(row, PROMPT_MISSING)
            self.skipped.reasons[reason] = self.skipped.reasons.get(reason, 0) + 1
        for row in dropped[: MAX_SKIPPED_EXAMPLES - len(self.skipped.examples)]:
            example = {"source": ready.file.path, "row": ready.start + row}
            self.skipped.examples.append(example | ({"reason": reasons[row]} if self.config.image_columns else {}))
        return reasons
