"""Each batch file's ``custom_id -> fingerprint`` read from the rows the split staged equals the one recomputed from
the file itself, whatever lies between its rows (other source files, skipped rows, rows the ledger answered), and
only the row groups holding its rows are read; older manifests and unclear spans fall back to the file."""

import itertools
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.split import batchfiles, source
from batchkit.split.answered import Answered
from batchkit.split.batch_inputs import batch_fingerprints, fingerprints, stored_fingerprints
from batchkit.split.manifest import MANIFEST_NAME, ROWS_NAME, Manifest
from batchkit.split.splitter import split
from tests.helpers import split_config

ROWS = (70, 45, 90)  # three source files


@pytest.fixture
def partition(tmp_path: Path, monkeypatch) -> Path:
    """Three source files, every 9th prompt empty and every 13th null; the rows file gets 16-row groups."""
    monkeypatch.setattr(source, "READ_BATCH_ROWS", 16)  # a record batch is a row group of the rows file
    root = tmp_path / "dt=1"
    root.mkdir()
    offset = 0
    for index, count in enumerate(ROWS):
        ids = [f"r{offset + i}" for i in range(count)]
        texts = [
            None if (offset + i) % 13 == 5 else "" if (offset + i) % 9 == 4 else f"text {offset + i}"
            for i in range(count)
        ]
        pq.write_table(pa.table({"id": ids, "text": texts}), root / f"part-{index}.parquet")
        offset += count
    return root


def answered(first: Path, custom_ids: set[str]) -> Answered:
    """The ledger's final answers to ``custom_ids`` (with the fingerprints of the first split's requests)."""
    prints = {k: v for f in sorted(first.glob("batch-*.jsonl")) for k, v in fingerprints(f).items()}
    chosen = sorted(custom_ids & prints.keys())
    return Answered.of(
        [pa.table({"custom_id": chosen, "fingerprint": [prints[c] for c in chosen], "final": [True] * len(chosen)})]
    )


def check_every_file(out: Path) -> Manifest:
    manifest = Manifest.load(out / MANIFEST_NAME)
    for index, entry in enumerate(manifest.files):
        path = str(out / entry.path)
        expected = fingerprints(path)
        assert batch_fingerprints(path, str(out / MANIFEST_NAME), index, entry.sha256) == expected, entry.path
        if entry.rows_span is not None and entry.rows_left_out is not None:  # read from the rows, not the file
            assert stored_fingerprints(str(out / ROWS_NAME), entry) == expected, entry.path
        assert len(expected) == entry.requests
    return manifest


def test_the_stored_map_equals_the_recomputed_one_for_every_batch_file(partition, tmp_path, monkeypatch):
    config = split_config(id_column="id", max_requests=23)
    first = split(str(partition), tmp_path / "first", config)
    assert first.totals["rows_skipped"] > 0 and len(first.files) > 3
    # answered before the rerun: a stretch across source files and scattered rows
    reused = {f"r{i}" for i in range(60, 120)} | {f"r{i}" for i in range(130, 200, 7)}
    out = tmp_path / "rerun"
    manifest = split(str(partition), out, config, answered=answered(tmp_path / "first", reused))
    assert manifest.totals["reused"] > 50 and manifest.version == 4
    assert all(entry.rows_left_out is not None for entry in manifest.files)
    read: list[list[int]] = []
    real_read = pq.ParquetFile.read_row_groups
    monkeypatch.setattr(
        pq.ParquetFile, "read_row_groups", lambda f, groups, **kw: read.append(groups) or real_read(f, groups, **kw)
    )
    check_every_file(out)
    groups = pq.ParquetFile(out / ROWS_NAME).metadata.num_row_groups
    assert len(read) == 2 * len(manifest.files) and all(0 < len(g) < groups / 2 for g in read)
    assert any(entry.rows_left_out for entry in manifest.files), "the rerun leaves answered rows between lines"
    spans = [entry.rows_span for entry in manifest.files]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    # the file spanning the answered stretch skips the row groups wholly inside it
    wide = max(range(len(spans)), key=lambda i: spans[i][1] - spans[i][0])
    start, stop = spans[wide]
    assert stop - start > 60 and len(read[2 * wide]) < (stop - 1) // 16 - start // 16 + 1 - 2


def test_a_file_with_too_many_stretches_left_out_is_read_from_the_file(partition, tmp_path, monkeypatch):
    monkeypatch.setattr(batchfiles, "MAX_GAPS", 2)
    config = split_config(id_column="id")
    split(str(partition), tmp_path / "first", config)
    out = tmp_path / "rerun"
    reused = {f"r{i}" for i in range(0, 200, 5)}
    manifest = split(str(partition), out, config, answered=answered(tmp_path / "first", reused))
    assert manifest.files[0].rows_span is not None and manifest.files[0].rows_left_out is None
    assert stored_fingerprints(str(out / ROWS_NAME), manifest.files[0]) is None
    check_every_file(out)


def test_an_older_manifest_or_another_file_is_read_from_the_file(partition, tmp_path):
    out = tmp_path / "out"
    manifest = split(str(partition), out, split_config(max_requests=50))
    data = json.loads((out / MANIFEST_NAME).read_text())
    for entry in data["files"]:
        del entry["rows_span"], entry["rows_left_out"]
    (out / MANIFEST_NAME).write_text(json.dumps({**data, "version": 3}))
    older = check_every_file(out)
    assert older.version == 3 and stored_fingerprints(str(out / ROWS_NAME), older.files[0]) is None
    path = str(out / manifest.files[1].path)  # a digest that is not the manifest's: the file is read
    assert batch_fingerprints(path, str(out / MANIFEST_NAME), 1, "other") == fingerprints(path)
