"""Prompt and id columns as text: invalid UTF-8 located by file, column and row; Unicode kept exactly."""

import pyarrow as pa
import pytest

from batchkit.errors import InputError
from batchkit.split.splitter import split
from tests.helpers import split_config, split_lines


@pytest.mark.parametrize("as_string", [False, True], ids=["binary column", "string column from a sloppy writer"])
def test_invalid_utf8_is_located(tmp_path, write_parquet, as_string):
    raw = pa.array([b"ok", b"bad \xff\xfe"], pa.binary())
    src = write_parquet("a.parquet", {"text": raw.view(pa.string()) if as_string else raw})
    with pytest.raises(InputError, match=r"a.parquet: column 'text', row 1: text is not valid UTF-8"):
        split(str(src), tmp_path / "o", split_config())


def test_unicode_round_trips_exactly(tmp_path, write_parquet):
    texts = [
        "emoji 🎉👍🏽 zwj 👨‍👩‍👧",
        "RTL مرحبا بالعالم שלום",
        'ctrl \x00\x1f \u2028 "q" \\ /',
        "日本語テキスト",
        "e\u0301 combining",
    ]
    src = write_parquet("a.parquet", {"text": texts})
    split(str(src), tmp_path / "o", split_config(endpoint="/v1/responses"))
    assert [line["body"]["input"] for line in split_lines(tmp_path / "o")] == texts
    assert "مرحبا".encode() in (tmp_path / "o" / "batch-00000.jsonl").read_bytes()  # raw UTF-8, not \u escapes


def test_invalid_utf8_in_a_fixed_size_binary_column_is_located(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": pa.array([b"ok", b"\xff\xfe"], pa.binary(2))})
    with pytest.raises(InputError, match=r"a.parquet: column 'text', row 1: text is not valid UTF-8"):
        split(str(src), tmp_path / "o", split_config())
