"""The split manifest: what was written, from what, with which parameters."""

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..storage import open_file

MANIFEST_NAME = "manifest.json"
ROWS_NAME = "rows.parquet"
# 4 adds each file's rows_span and rows_left_out; 3 the cost estimate; 2 rows_file and the new/changed/retried/reused
# totals. Older manifests are read as they are (what they lack is None).
MANIFEST_VERSION = 4


@dataclass
class BatchFileEntry:
    """One batch input file; ``first_row``/``last_row`` are ``[source_index, row]`` positions. Its requests are the
    rows ``rows_span`` ``[start, stop)`` of the rows file that have a fingerprint, less the stretches
    ``rows_left_out`` (``[start, stop)`` each: rows the ledger had answered); None: not known (a manifest before
    version 4, or more than ``batchfiles.MAX_GAPS`` stretches)."""

    path: str
    requests: int
    bytes: int
    estimated_tokens: int
    sha256: str
    model: str
    endpoint: str
    first_row: list[int]
    last_row: list[int]
    rows_span: list[int] | None = None
    rows_left_out: list[list[int]] | None = None


@dataclass
class SkippedRows:
    """Rows not turned into requests: their prompt was null or empty, or (with image columns) an image cell was
    null or not an image; ``reasons`` counts them by reason (manifests written before it have none)."""

    count: int = 0
    reason: str = "prompt is null or empty"
    examples: list[dict[str, Any]] = field(default_factory=list)  # with image columns, each names its reason
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class Manifest:
    """Everything a later step needs to submit the files and map results back to input rows."""

    sources: list[dict[str, Any]]
    parameters: dict[str, Any]
    files: list[BatchFileEntry]
    skipped: SkippedRows
    totals: dict[str, int]
    custom_id: str  # how custom_id maps back to a row: "column:<name>" or "position:<source_index>-<row>"
    rows_file: str | None = None  # the partition's rows as split (kept columns, custom_id, fingerprint)
    estimate: dict[str, Any] | None = None  # the expected bill (batchkit.cost.pricing.Estimate)
    version: int = MANIFEST_VERSION

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        with open_file(path) as handle:
            data = orjson.loads(handle.read())
        data["files"] = [BatchFileEntry(**f) for f in data["files"]]
        data["skipped"] = SkippedRows(**data["skipped"])
        return cls(**data)
