"""Reading a batch input file back: the request lines to resend, their fingerprints (from the rows the split
staged, or the file itself), the output schema asked for."""

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import orjson
import pyarrow.parquet as pq

from ..storage import is_remote, open_file
from ..structured import AnswerCheck, schema_of
from .manifest import BatchFileEntry, Manifest
from .requests import ID_PREFIX

log = logging.getLogger(__name__)


def _lines(path: str | Path) -> IO[bytes]:
    """A file to read line by line, in 8 MB blocks: a remote file's own ``readline`` copies a whole block (50 MB on
    S3) for each line, hours of copying for a 200 MB batch file."""
    if not is_remote(str(path)):
        return open(path, "rb", buffering=1 << 20)
    return io.BufferedReader(open_file(path, "rb", block_size=8 << 20, cache_type="none"), buffer_size=8 << 20)


def request_lines(batch_file: str | Path, custom_ids: set[str]) -> Iterator[bytes]:
    """The original request lines for ``custom_ids`` (to resubmit them), streamed from the batch file."""
    with _lines(batch_file) as lines:
        for raw in lines:
            if raw.strip() and orjson.loads(raw)["custom_id"] in custom_ids:
                yield raw if raw.endswith(b"\n") else raw + b"\n"


def fingerprints(batch_file: str | Path) -> dict[str, str]:
    """``custom_id -> fingerprint`` of a batch input file written by the splitter (see ``ledger.fingerprint``)."""
    from ..ledger import fingerprint

    found = {}
    with _lines(batch_file) as lines:
        for raw in lines:
            if raw.strip():
                line = raw if raw.endswith(b"\n") else raw + b"\n"
                custom_id = orjson.loads(line)["custom_id"]
                found[custom_id] = fingerprint(line[len(ID_PREFIX) + len(orjson.dumps(custom_id)) :])
    return found


def batch_fingerprints(batch_file: str, manifest_url: str, index: int, sha256: str) -> dict[str, str]:
    """``custom_id -> fingerprint`` of the split's batch file ``index`` (at ``batch_file``, its digest ``sha256``):
    read from the rows file the split staged beside ``manifest_url``, only the row groups holding the file's rows;
    from the batch file itself (all of it) when the manifest does not say where they are (``stored_fingerprints``)."""
    manifest = Manifest.load(manifest_url)
    entry = manifest.files[index] if index < len(manifest.files) else None
    if entry is not None and entry.sha256 == sha256 and manifest.rows_file:
        stored = stored_fingerprints(f"{manifest_url.rsplit('/', 1)[0]}/{manifest.rows_file}", entry)
        if stored is not None and len(stored) == entry.requests:
            return stored
        if stored is not None:
            log.warning("the rows file holds %d of %s's %d requests", len(stored), batch_file, entry.requests)
    log.info("reading the fingerprints of %s from the file (manifest version %s)", batch_file, manifest.version)
    return fingerprints(batch_file)


def stored_fingerprints(rows_url: str, entry: BatchFileEntry) -> dict[str, str] | None:
    """``custom_id -> fingerprint`` of the batch file ``entry`` from the split's rows file (``rows_url``), reading
    the two columns of the row groups its span covers (less those wholly left out); None when the manifest
    does not say which rows the file holds (written before version 4, or too many stretches left out)."""
    if entry.rows_span is None or entry.rows_left_out is None:
        return None
    (start, stop), left_out = entry.rows_span, np.array(entry.rows_left_out or [], np.int64).reshape(-1, 2)
    # exact ranges on object storage (no read-ahead: the other columns lie between), coalesced per row group
    with open_file(rows_url, "rb", cache_type="none") as handle:
        rows = pq.ParquetFile(handle, pre_buffer=True)
        counts = [rows.metadata.row_group(g).num_rows for g in range(rows.metadata.num_row_groups)]
        bounds = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        overlap = (bounds[:-1] < stop) & (bounds[1:] > start)
        for first, end in left_out:  # row groups wholly left out are not read
            overlap &= ~((first <= bounds[:-1]) & (bounds[1:] <= end))
        groups = np.flatnonzero(overlap).tolist()
        table = rows.read_row_groups(groups, columns=["__custom_id", "__fingerprint"])
    at = np.concatenate([np.arange(bounds[g], bounds[g + 1]) for g in groups] or [np.array([], np.int64)])
    keep = (at >= start) & (at < stop) & table.column("__fingerprint").is_valid().to_numpy(zero_copy_only=False)
    for first, end in left_out:
        keep &= (at < first) | (at >= end)
    table = table.filter(keep)
    return dict(zip(table.column("__custom_id").to_pylist(), table.column("__fingerprint").to_pylist()))


def answer_check(batch_file: str | Path) -> AnswerCheck | None:
    """The check of the output schema a batch input file's requests ask for (structured outputs), or None; reads
    its first line only (in small blocks from object storage)."""
    with open_file(batch_file, "rb", block_size=1 << 20) as lines:
        for raw in lines:
            if raw.strip():
                schema = schema_of(orjson.loads(raw)["body"])
                return AnswerCheck(schema) if schema else None
    return None
