"""Publishing a split into --out: only a new, empty or previous-split directory is replaced, atomically."""

import pytest

from batchkit.errors import InputError
from batchkit.split.splitter import split
from tests.helpers import split_config


def test_failed_split_keeps_previous_output(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["a", "b"], "id": [1, 1]})
    split(str(src), tmp_path / "out", split_config())
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    with pytest.raises(InputError, match="duplicate id"):
        split(str(src), tmp_path / "out", split_config(id_column="id"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "precious", ["precious.txt", "batch-2025-01.csv", "batch-archive/notes.txt", "manifest.json", "rows.parquet"]
)
def test_refuses_to_replace_anything_but_a_previous_split(tmp_path, write_parquet, precious):
    """Files named like a split's (batch-*, manifest.json) are the user's unless a manifest lists them."""
    src = write_parquet("a.parquet", {"text": ["a"]})
    (tmp_path / "out" / precious).parent.mkdir(parents=True)
    (tmp_path / "out" / precious).write_text("keep")
    with pytest.raises(InputError, match="holds files that are not a previous split"):
        split(str(src), tmp_path / "out", split_config())
    assert (tmp_path / "out" / precious).read_text() == "keep"


def test_a_previous_split_is_replaced_but_not_when_a_file_was_added(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["a", "b"]})
    split(str(src), tmp_path / "out", split_config())
    split(str(src), tmp_path / "out", split_config(max_requests=1))  # replaces it: its manifest lists every file
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "batch-00000.jsonl",
        "batch-00001.jsonl",
        "manifest.json",
        "rows.parquet",
    ]
    (tmp_path / "out" / "batch-notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"batch-notes\.txt"):
        split(str(src), tmp_path / "out", split_config())
    assert (tmp_path / "out" / "batch-notes.txt").exists()


def test_an_out_that_is_a_file_is_refused_before_reading_the_source(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(InputError, match="is not a directory"):
        split(str(tmp_path / "no-such-source"), tmp_path / "out", split_config())


def test_a_file_url_out_is_that_absolute_path(tmp_path, write_parquet, monkeypatch):
    src = write_parquet("a.parquet", {"text": ["x"]})
    monkeypatch.chdir(tmp_path)  # a relative "file:" directory would appear here
    split(str(src), f"file://{tmp_path}/o", split_config())
    assert (tmp_path / "o" / "manifest.json").is_file()
    assert not (tmp_path / "file:").exists()


@pytest.mark.parametrize("previous", [False, True], ids=["empty target", "target holds a previous split"])
def test_a_symlinked_out_is_replaced_at_its_target_and_the_link_kept(tmp_path, write_parquet, previous):
    src = write_parquet("a.parquet", {"text": ["a", "b"]})
    (tmp_path / "target").mkdir()
    if previous:
        split(str(src), tmp_path / "target", split_config())
    (tmp_path / "link").symlink_to(tmp_path / "target")
    split(str(src), tmp_path / "link", split_config(max_requests=1))
    assert (tmp_path / "link").readlink() == tmp_path / "target"
    assert sorted(p.name for p in (tmp_path / "target").iterdir()) == [
        "batch-00000.jsonl",
        "batch-00001.jsonl",
        "manifest.json",
        "rows.parquet",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "link", "target"], "no .old or .tmp left"
