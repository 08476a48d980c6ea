"""The id column: null, empty and duplicate ids are refused with the files and rows named."""

import pytest

from batchkit.errors import InputError
from batchkit.split.splitter import split
from tests.helpers import split_config, split_lines


@pytest.mark.parametrize(
    "ids,message",
    [
        ([1, 2, 1], r"duplicate id '1' in column 'id' \(.*a.parquet row 0; .*a.parquet row 2\)"),
        (["a", None, "c"], r"a.parquet: column 'id', row 1: id is null or empty"),
        (["a", "", "c"], r"row 1: id is null or empty"),
    ],
)
def test_bad_ids(tmp_path, write_parquet, ids, message):
    src = write_parquet("a.parquet", {"id": ids, "text": ["x", "y", "z"]})
    with pytest.raises(InputError, match=message):
        split(str(src), tmp_path / "o", split_config(id_column="id"))


def test_duplicate_ids_across_files(tmp_path, write_parquet):
    write_parquet("p/a.parquet", {"id": [1, 2], "text": ["x", "y"]})
    write_parquet("p/b.parquet", {"id": [3, 2], "text": ["x", "y"]})
    with pytest.raises(InputError, match=r"duplicate id '2'.*a.parquet row 1; .*b.parquet row 1"):
        split(str(tmp_path / "p"), tmp_path / "o", split_config(id_column="id"))


@pytest.mark.parametrize(("folder", "sibling"), [("x?", "xy"), ("k[1]", "k1"), ("s*", "sa")])
def test_ids_are_read_from_a_path_with_glob_characters_literally(tmp_path, write_parquet, folder, sibling):
    """The id check must not expand ``?``, ``[`` or ``*`` in a file's name: a sibling's ids are not the partition's."""
    write_parquet(f"p/{folder}/a.parquet", {"id": [1, 2], "text": ["x", "y"]})
    write_parquet(f"p/{sibling}/a.parquet", {"id": [1, 1], "text": ["x", "y"]})
    manifest = split(str(tmp_path / "p" / folder), tmp_path / "o", split_config(id_column="id"))
    assert [line["custom_id"] for line in split_lines(tmp_path / "o")] == ["1", "2"]
    assert [s["path"] for s in manifest.sources] == [str(tmp_path / "p" / folder / "a.parquet")]
