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
from pathlib import Path
from typing import Any

from ..cost.pricing import estimate
from ..errors import InputError
from ..results import moderations
from ..storage import Upload, is_remote, local_path, put_file
from ..structured import check_columns
from .answered import Answered
from .batchfiles import MORE_FILES, FileWriter, RowsWriter
from .manifest import MANIFEST_NAME, ROWS_NAME, Manifest
from .out_dir import check_out, publish
from .requests import RequestShape
from .source import SourceFile, iter_batches, open_files, prefetch, resolve_files, rows_per_read
from .split_config import SplitConfig
from .split_job import SplitJob
from .template import PromptTemplate
from .unique_ids import check_unique_ids

log = logging.getLogger(__name__)


Progress = Callable[[int, int], None]  # (rows read, files written)


def split(
    source: str,
    out_dir: str | Path,
    config: SplitConfig,
    progress: Progress | None = None,
    answered: Answered | None = None,
    on_file: Callable[[Path], None] | None = None,
    rows_url: str | None = None,
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
    sits on local disk whole). ``rows_url``: stream ``rows.parquet`` there as it is written (e.g. the run's
    staging on S3), so it never sits on local disk either; ``out_dir`` then holds no copy of it. A local
    ``out_dir`` that is a symlink to a directory is written at its target.

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
    images = list(config.image_columns or [])
    shape = RequestShape.build(
        config.endpoint,
        config.model,
        config.system_prompt,
        config.body_options,
        config.output_schema,
        len(images),
        config.image_detail,
    )
    template = PromptTemplate.parse(config.prompt_template) if config.prompt_template else None
    prompt_columns = list(template.columns) if template else [config.prompt_column]
    request_columns = list(dict.fromkeys(prompt_columns + ([config.id_column] if config.id_column else []) + images))
    files, schema = open_files(resolve_files(source), request_columns + list(config.keep_columns or []))
    keep = list(config.keep_columns) if config.keep_columns is not None else list(schema.names if schema else [])
    if config.id_column and config.id_column not in keep:
        keep.append(config.id_column)  # rows are matched to their results by it
    read_columns = list(dict.fromkeys(request_columns + keep))
    if config.output_schema is not None:
        check_columns(config.output_schema, keep)
    moderations.check_columns(config.endpoint, keep)
    _check_file_count(files, config)
    if config.id_column:
        check_unique_ids(files, config.id_column)

    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot create it ({exc.strerror or exc})") from None
    rows_out, rows = None, None
    try:
        writer = FileWriter(staging, shape, config, on_file)
        rows_out = Upload(rows_url) if rows_url else None
        rows = RowsWriter(rows_out.handle if rows_out else staging / ROWS_NAME, schema, keep, bool(images))
        job = SplitJob(template, config, shape, writer, rows, answered or Answered.nothing())
        skipped = job.skipped
        if images:
            skipped.reason = "prompt is null or empty, or an image cell is null or not an image (see reasons)"
        rows_read = 0
        for file in files:
            read = iter_batches(file, read_columns, rows_per_read(file, images))
            with (
                closing(prefetch(read)) as batches,  # an error stops the reader
                closing(job.prepared(file, batches)) as prepared,  # and the workers
            ):
                for ready in prepared:
                    job.commit(ready)
                    rows_read += ready.batch.num_rows
                    if progress:
                        progress(rows_read, len(writer.entries))
        job.shutdown()
        writer.close()
        writer.shutdown()
        rows.close()
        if rows_out is not None:
            rows_out.commit()
            rows_out = None
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
            config.vendor,
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
        if rows_out is not None:  # the split failed: no rows.parquet at rows_url
            if rows is not None:
                rows.abandon()
            rows_out.discard()
        shutil.rmtree(staging, ignore_errors=True)


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
        **(
            {"image_columns": config.image_columns, "image_detail": config.image_detail} if config.image_columns else {}
        ),
        "token_estimate": "exact" if config.exact_tokens else "heuristic",
    }
