"""Local side of ``batchkit.storage``: whole-file publishing and retention pruning (S3 is covered in
tests/integration/test_dag_s3.py against a real S3 endpoint)."""

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from batchkit.errors import SetupError
from batchkit.storage import open_file, pipeline_parts, prune, put_file


def make_run(root: Path, partition: str, run: str, age_days: float) -> Path:
    area = root / partition / run
    (area / "inputs").mkdir(parents=True)
    path = area / "inputs" / "batch-00000.jsonl"
    path.write_text("{}\n")
    stamp = time.time() - age_days * 86400
    os.utime(path, (stamp, stamp))
    return area


def test_prune_deletes_only_run_areas_past_retention(tmp_path):
    root = tmp_path / "staging" / "dag"
    old = make_run(root, "2026-11-01", "scheduled__1", age_days=10)
    fresh = make_run(root, "2026-11-24", "manual__2", age_days=1)
    stray = root / "README.txt"  # not a run area: never touched
    stray.write_text("keep")
    os.utime(stray, (0, 0))

    deleted = prune(str(root), timedelta(days=7))

    assert deleted == [str(old)]
    assert not old.exists() and fresh.exists() and stray.exists()
    assert (root / "2026-11-01").exists(), "only the run directory goes, not its partition directory"


def test_prune_never_deletes_the_source(tmp_path):
    root = tmp_path / "dag"
    holding_source = make_run(root, "2026-11-01", "r1", age_days=30)
    inside_source = make_run(root, "2026-11-02", "r2", age_days=30)
    other = make_run(root, "2026-11-03", "r3", age_days=30)
    source = holding_source / "data" / "dt=2026-11-01"

    deleted = prune(str(root), timedelta(days=7), protect=[str(source), str(root / "2026-11-02")])

    assert deleted == [str(other)]
    assert holding_source.exists() and inside_source.exists()
    assert prune(str(tmp_path / "missing"), timedelta(days=1)) == []


def test_put_file_replaces_whole_files(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"old\n")
    second.write_bytes(b"new\n")
    target = tmp_path / "staging" / "inputs" / "batch.jsonl"
    put_file(first, str(target))
    put_file(second, str(target))
    with open_file(target) as handle:
        assert handle.read() == b"new\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["batch.jsonl"]


def test_a_pipeline_in_a_group_has_its_own_area_which_the_top_level_prune_never_enters(tmp_path):
    dag = tmp_path / "staging" / "dag"
    top = make_run(dag, "2026-11-01", "r1", age_days=30)
    grouped_root = dag.joinpath(*pipeline_parts("dag", "reviews")[1:])
    grouped = make_run(grouped_root, "2026-11-01", "r1", age_days=30)
    (grouped_root / "2026-11-01" / "_ledger").mkdir()

    assert prune(str(dag), timedelta(days=7)) == [str(top)]
    assert grouped.exists() and (grouped_root / "2026-11-01" / "_ledger").exists()
    assert prune(str(grouped_root), timedelta(days=7)) == [str(grouped)]
    assert (grouped_root / "2026-11-01" / "_ledger").exists()


def test_pipeline_parts_keep_the_top_level_layout_and_refuse_unsafe_ids():
    assert pipeline_parts("d") == ("d",)
    assert pipeline_parts("d", "outer.reviews") == ("d", "_pipelines", "outer.reviews")
    for bad in ("..", "_x", "a/b", ".x"):
        with pytest.raises(SetupError, match="cannot name a staging directory"):
            pipeline_parts("d", bad)
