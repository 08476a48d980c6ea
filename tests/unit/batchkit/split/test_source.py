"""Parquet sources: files, directories, globs and URLs; unreadable files and schema drift named."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.errors import InputError
from batchkit.split.splitter import split
from tests.helpers import split_config, split_lines


def test_corrupt_parquet(tmp_path, write_parquet):
    write_parquet("p/a.parquet", {"text": ["x"]})
    (tmp_path / "p" / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=r"b.parquet: not a readable Parquet file"):
        split(str(tmp_path / "p"), tmp_path / "o", split_config())
    assert not (tmp_path / "o").exists()


def test_a_footer_with_a_non_utf8_column_name_is_a_clear_input_error(tmp_path, write_parquet):
    path = write_parquet("p/a.parquet", {"zqxcolumn": ["x"]})
    data = path.read_bytes()
    path.write_bytes(data.replace(b"zqxcolumn", b"\x8bqxcolumn"))  # the name sits in the footer, same length
    with pytest.raises(InputError, match=r"a.parquet: not a readable Parquet file"):
        split(str(tmp_path / "p"), tmp_path / "o", split_config(prompt_column="zqxcolumn"))


def test_missing_source(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        split(str(tmp_path / "nope"), tmp_path / "o", split_config())


def test_schema_drift_names_files_and_column(tmp_path, write_parquet):
    write_parquet("p/a.parquet", {"id": [1], "text": ["x"]})
    write_parquet("p/b.parquet", {"id": ["1"], "text": ["x"]})
    with pytest.raises(
        InputError, match=r"schema drift.*b.parquet differs from .*a.parquet: column 'id' is string, expected int64"
    ):
        split(str(tmp_path / "p"), tmp_path / "o", split_config())


def test_files_with_their_columns_in_another_order_are_one_schema(tmp_path, write_parquet):
    write_parquet("p/a.parquet", {"id": [1, 2], "text": ["x", "y"], "stars": [1, 2]})
    write_parquet("p/b.parquet", {"stars": [3], "text": ["z"], "id": [3]})  # as Spark may write it
    split(str(tmp_path / "p"), tmp_path / "o", split_config(id_column="id"))
    rows = pq.read_table(tmp_path / "o" / "rows.parquet")
    assert sorted(zip(rows["id"].to_pylist(), rows["text"].to_pylist(), rows["stars"].to_pylist())) == [
        (1, "x", 1),
        (2, "y", 2),
        (3, "z", 3),
    ]


def test_duplicate_column_names_are_named(tmp_path):
    path = tmp_path / "p" / "a.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table([[1], ["x"], ["y"]], names=["id", "text", "text"]), path)
    with pytest.raises(InputError, match=r"a.parquet: column name\(s\) 'text' appear more than once"):
        split(str(tmp_path / "p"), tmp_path / "o", split_config())


def test_glob_source(tmp_path, write_parquet):
    write_parquet("g/x-1.parquet", {"text": ["a"]})
    write_parquet("g/x-2.parquet", {"text": ["b"]})
    write_parquet("g/other.parquet", {"text": ["c"]})
    manifest = split(str(tmp_path / "g" / "x-*.parquet"), tmp_path / "o", split_config())
    assert manifest.totals["requests"] == 2


def test_an_http_source_is_read_as_given(tmp_path, write_parquet):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    write_parquet("www/a.parquet", {"id": [1, 2], "text": ["x", "y"]})
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/a.parquet"
        try:
            manifest = split(url, tmp_path / "o", split_config())
        finally:
            server.shutdown()
    assert [s["path"] for s in manifest.sources] == [url]
    assert [line["body"]["messages"][0]["content"] for line in split_lines(tmp_path / "o")] == ["x", "y"]


def test_a_caller_that_stops_early_stops_the_reader_before_going_on():
    """The split's error path: no read may outlive it (one running in Arrow at exit aborts the process)."""
    import threading
    import time
    from contextlib import closing

    from batchkit.split.source import prefetch

    def slow_batches():
        for i in range(1_000):
            time.sleep(0.01)
            yield i, pa.record_batch({"x": [i]})

    with pytest.raises(ValueError), closing(prefetch(slow_batches())) as batches:
        for start, _ in batches:
            if start == 3:
                raise ValueError("a bad row")
    assert not [t for t in threading.enumerate() if t.name == "batchkit-reader"]
