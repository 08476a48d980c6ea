"""Split a Parquet partition into OpenAI Batch input files (JSONL) plus a manifest.

Rows are streamed with pyarrow record batches; each output file respects the request, byte and
token limits; output appears in the target directory only when the whole split succeeded.
"""

import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import tokens
from .arrow_numpy import flags, int64s, numbers, text_scalar, valid
from .batch_api import MAX_BYTES, MAX_REQUESTS
from .batchfiles import MORE_FILES, FileWriter, RowsWriter
from .errors import InputError
from .ledger import Answered
from .lines import RequestLines
from .manifest import MANIFEST_NAME, ROWS_NAME, Manifest, SkippedRows
from .out_dir import check_out, publish
from .pricing import check_prices, estimate
from .requests import RequestShape
from .source import SourceFile, iter_batches, open_files, prefetch, resolve_files
from .storage import is_remote, local_path, put_file
from .structured import check_columns
from .template import PromptTemplate
from .text_columns import as_text, check_utf8
from .unique_ids import check_unique_ids

log = logging.getLogger(__name__)

MAX_SKIPPED_EXAMPLES = 20


@dataclass
class SplitConfig:
    """Parameters of one split; defaults follow the OpenAI Batch API limits."""

    model: str
    endpoint: str = "/v1/chat/completions"
    prompt_column: str | None = None
    prompt_template: str | None = None
    system_prompt: str | None = None
    id_column: str | None = None
    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_BYTES
    max_tokens: int | None = None
    body_options: dict[str, Any] = field(default_factory=dict)
    exact_tokens: bool = False
    keep_columns: list[str] | None = None  # input columns kept beside the results (None: all)
    max_files: int | None = None  # e.g. Airflow's [core] max_map_length: refuse before writing more files
    output_schema: dict[str, Any] | None = None  # JSON Schema of every answer: typed columns (batchkit.structured)
    expected_output_tokens: int | None = None  # per request, for the cost estimate (else the body's max_tokens)
    prices: dict[str, Any] | None = None  # batch price overrides (batchkit.pricing)

    def __post_init__(self) -> None:
        if (self.prompt_column is None) == (self.prompt_template is None):
            raise InputError("give exactly one of --prompt-column or --prompt-template")
        if not 1 <= self.max_requests <= MAX_REQUESTS:
            raise InputError(f"--max-requests must be between 1 and {MAX_REQUESTS}, got {self.max_requests}")
        if not 1 <= self.max_bytes <= MAX_BYTES:
            raise InputError(f"--max-bytes must be between 1 byte and 200MB, got {self.max_bytes}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InputError(f"--max-tokens must be positive, got {self.max_tokens}")
        if self.prices:
            check_prices(self.prices)
        if self.expected_output_tokens is not None and self.expected_output_tokens < 0:
            raise InputError(f"expected output tokens must be >= 0, got {self.expected_output_tokens}")
        if self.output_schema is not None:
            from .structured import request_fields

            request_fields(self.endpoint, self.output_schema)  # a usable schema on a text endpoint


Progress = Callable[[int, int], None]  # (rows read, files written)


def split(
    source: str,
    out_dir: str | Path,
    config: SplitConfig,
    progress: Progress | None = None,
    answered: Answered | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> Manifest:
    """Split ``source`` into ``out_dir/batch-NNNNN.jsonl`` files, ``out_dir/rows.parquet`` and
    ``out_dir/manifest.json``.

    ``rows.parquet`` is the partition as it was read: the kept input columns of every row with its
    ``__custom_id`` and request ``__fingerprint`` (null when the row was skipped), so later steps never
    re-read a source that may have changed since. Requests in ``answered`` (the ledger's) are left out of the
    batch files; the manifest counts them as reused, the rest as new, changed or retried.

    ``out_dir`` may be remote (``s3://bucket/prefix``): the files are then written locally first and uploaded,
    the manifest last, so a manifest there always describes complete files. ``on_file(path)`` is called as soon
    as each batch file is complete (it may move the file away: publish it, so a partition of many files never
    sits on local disk whole). A local ``out_dir`` that is a symlink to a directory is written at its target.

    :raises InputError: with the file, column and row at fault; ``out_dir`` is then left untouched.
    """
    if is_remote(str(out_dir)):
        with tempfile.TemporaryDirectory(prefix="batchkit-split-") as local:
            manifest = split(source, Path(local) / "out", config, progress, answered, on_file)
            target = str(out_dir).rstrip("/")
            for name in [f.path for f in manifest.files] + [ROWS_NAME, MANIFEST_NAME]:
                put_file(Path(local) / "out" / name, f"{target}/{name}")
            return manifest
    out = local_path(out_dir)
    if out.is_symlink() and out.is_dir():  # the split replaces the link's target, the link stays
        out = out.resolve()
    check_out(out)  # before any work: a bad --out must not cost a whole split
    shape = RequestShape.build(
        config.endpoint, config.model, config.system_prompt, config.body_options, config.output_schema
    )
    template = PromptTemplate.parse(config.prompt_template) if config.prompt_template else None
    prompt_columns = list(template.columns) if template else [config.prompt_column]
    request_columns = list(dict.fromkeys(prompt_columns + ([config.id_column] if config.id_column else [])))
    files, schema = open_files(resolve_files(source), request_columns + list(config.keep_columns or []))
    keep = list(config.keep_columns) if config.keep_columns is not None else list(schema.names if schema else [])
    if config.id_column and config.id_column not in keep:
        keep.append(config.id_column)  # rows are matched to their results by it
    read_columns = list(dict.fromkeys(request_columns + keep))
    if config.output_schema is not None:
        check_columns(config.output_schema, keep)
    _check_file_count(files, config)
    if config.id_column:
        check_unique_ids(files, config.id_column)

    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot create it ({exc.strerror or exc})") from None
    try:
        writer = FileWriter(staging, shape, config, on_file)
        rows = RowsWriter(staging / ROWS_NAME, schema, keep)
        job = _SplitJob(template, config, shape, writer, rows, answered or Answered(set(), set(), set()))
        skipped = job.skipped
        rows_read = 0
        for file in files:
            with closing(prefetch(iter_batches(file, read_columns))) as batches:  # an error stops the reader
                for start, batch in batches:
                    job.add(file, start, batch)
                    rows_read += batch.num_rows
                    if progress:
                        progress(rows_read, len(writer.entries))
        writer.close()
        writer.shutdown()
        rows.close()
        requests = sum(e.requests for e in writer.entries)
        input_tokens = sum(e.estimated_tokens for e in writer.entries)
        cost = estimate(
            config.model,
            config.endpoint,
            requests,
            input_tokens,
            config.body_options,
            config.expected_output_tokens,
            config.prices,
        )
        manifest = Manifest(
            sources=[{"path": f.path, "rows": f.rows} for f in files],
            parameters=_parameters(source, config),
            files=writer.entries,
            skipped=skipped,
            totals={
                "files": len(writer.entries),
                "requests": requests,
                "bytes": sum(e.bytes for e in writer.entries),
                "estimated_tokens": input_tokens,
                "rows_read": rows_read,
                "rows_skipped": skipped.count,
                **job.reuse,
            },
            rows_file=ROWS_NAME,
            custom_id=f"column:{config.id_column}" if config.id_column else "position:<source_index>-<row>",
            estimate=cost.to_dict(),
        )
        (staging / MANIFEST_NAME).write_bytes(manifest.to_json())
        publish(staging, out)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class _SplitJob:
    """What turns record batches into request lines for one split."""

    template: PromptTemplate | None
    config: SplitConfig
    shape: RequestShape
    writer: "FileWriter"
    rows: "RowsWriter"
    answered: Answered
    skipped: SkippedRows = field(default_factory=SkippedRows)
    reuse: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("new", "changed", "retried", "reused"), 0))

    def add(self, file: SourceFile, start: int, batch: pa.RecordBatch) -> None:
        try:
            self._build_requests(file, start, batch)
        except (UnicodeDecodeError, pa.ArrowInvalid):
            # Text is validated lazily (decoding fails on bad bytes); only then pay for locating the bad row.
            names = [*(self.template.columns if self.template else [self.config.prompt_column]), self.config.id_column]
            for name in dict.fromkeys(n for n in names if n):
                check_utf8(batch.column(name), file, start, name)
            raise

    def _build_requests(self, file: SourceFile, start: int, batch: pa.RecordBatch) -> None:
        config, shape = self.config, self.shape
        if self.template:
            prompts = self.template.render({c: as_text(batch.column(c), file, c) for c in self.template.columns})
        else:
            prompts = as_text(batch.column(config.prompt_column), file, config.prompt_column)
        keep = valid(prompts) & (numbers(pc.utf8_length(prompts)) > 0) & ~flags(pc.utf8_is_space(prompts))
        rows = np.flatnonzero(keep)
        if len(rows) < batch.num_rows:
            _record_skipped(file, start, keep, self.skipped)
            prompts = prompts.take(int64s(rows))
        if config.id_column:
            all_ids = as_text(batch.column(config.id_column), file, config.id_column)
        else:
            positions = int64s(np.arange(start, start + batch.num_rows)).cast(pa.large_string())
            all_ids = pc.binary_join_element_wise(text_scalar(f"{file.index}-"), positions, text_scalar(""))
        ids = all_ids.take(int64s(rows)) if len(rows) < batch.num_rows else all_ids
        prompts.validate(full=True)  # the bytes are copied as they are: invalid UTF-8 raises ArrowInvalid here
        all_ids.validate(full=True)
        lines = RequestLines.build(shape, ids, prompts)
        prints = lines.fingerprints()
        row_prints: list[str | None] = prints
        if len(rows) < batch.num_rows:
            row_prints = [None] * batch.num_rows
            for row, value in zip(rows.tolist(), prints):
                row_prints[row] = value
        self.rows.write(batch, all_ids, row_prints)
        send = self._not_answered(ids, prints)
        if send is not None:
            rows, lines = rows[send], lines.take(send)
            prompts = prompts.take(int64s(send))
        if not len(rows):
            return
        if config.exact_tokens:
            estimates = tokens.exact_tokens(prompts, config.model, shape.fixed_text)
        else:
            estimates = tokens.heuristic_tokens(prompts, len(shape.fixed_text))
        self.writer.write_rows(file, start, rows, lines, estimates)

    def _not_answered(self, ids: pa.Array, prints: list[str]) -> np.ndarray | None:
        """Positions of the requests to send (None: all); counts new, changed, retried and reused requests."""
        answered = self.answered
        if not (answered.final or answered.final_ids or answered.seen):
            self.reuse["new"] += len(prints)
            return None
        send = []
        for i, (custom_id, value) in enumerate(zip(ids.to_pylist(), prints)):
            if f"{custom_id}\x00{value}" in answered:
                self.reuse["reused"] += 1
                continue
            send.append(i)
            kind = "changed" if custom_id in answered.final_ids else "retried" if custom_id in answered.seen else "new"
            self.reuse[kind] += 1
        return None if len(send) == len(prints) else np.array(send, np.int64)


def _record_skipped(file: SourceFile, start: int, keep: np.ndarray, skipped: SkippedRows) -> None:
    dropped = np.flatnonzero(~keep)
    skipped.count += len(dropped)
    for row in dropped[: MAX_SKIPPED_EXAMPLES - len(skipped.examples)].tolist():
        skipped.examples.append({"source": file.path, "row": start + row})


def _check_file_count(files: list[SourceFile], config: SplitConfig) -> None:
    """Refuse, from the Parquet footers alone, a partition that needs more files than ``config.max_files``."""
    rows = sum(f.rows for f in files)
    least = -(-rows // config.max_requests)
    log.info("%d rows: at least %d batch file(s) of at most %d requests", rows, least, config.max_requests)
    if config.max_files is not None and least > config.max_files:
        raise InputError(
            f"the partition has {rows:,} rows: at {config.max_requests:,} requests per file that is at least "
            f"{least:,} batch files, over the limit of {config.max_files:,}; {MORE_FILES}"
        )


def _parameters(source: str, config: SplitConfig) -> dict[str, Any]:
    return {
        "source": source,
        "model": config.model,
        "endpoint": config.endpoint,
        "prompt_column": config.prompt_column,
        "prompt_template": config.prompt_template,
        "system_prompt": config.system_prompt,
        "id_column": config.id_column,
        "max_requests": config.max_requests,
        "max_bytes": config.max_bytes,
        "max_tokens": config.max_tokens,
        "body_options": config.body_options,
        "keep_columns": config.keep_columns,
        "output_schema": config.output_schema,
        "token_estimate": "exact" if config.exact_tokens else "heuristic",
    }
