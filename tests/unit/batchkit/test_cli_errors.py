"""The CLI answers bad input with one line and exit 2, never a traceback."""

import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import corrupt_data_pages


def batchkit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "batchkit.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "emulator.internal"])
def test_the_emulator_refuses_a_reachable_address_without_a_key(host, tmp_path):
    done = batchkit("emulator", "--host", host, "--port", "0", "--data-dir", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--host {host} is reachable from other machines" in done.stderr
    assert not any(tmp_path.iterdir()), "nothing was started or written"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--api-key", "sk-x"), "--api-key puts the key in the process list"),
        (("--api-key-file", "/nonexistent/key"), "--api-key-file /nonexistent/key: No such file"),
        (("--api-key-file", "/dev/null"), "--api-key-file /dev/null is empty"),
    ],
    ids=["key in argv", "missing key file", "empty key file"],
)
def test_the_emulator_key_never_comes_from_argv(args, message, tmp_path):
    done = batchkit("emulator", "--port", "0", "--data-dir", str(tmp_path), *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-500:]
    assert message in done.stderr and "sk-x" not in done.stderr


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"temperature": NaN}', "NaN is not JSON"),
        ('{"x": Infinity}', "Infinity is not JSON"),
        ('{"a": ' * 5_000 + "1" + "}" * 5_000, "nested too deeply"),
        ("[1]", "must be a JSON object"),
    ],
    ids=["NaN", "Infinity", "deeply nested", "not an object"],
)
def test_body_json_must_be_strict_json(tmp_path, body, message):
    done = batchkit("split", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--model", "m", "--body-json", body)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-500:]
    assert message in done.stderr


def split_args(source, out, *extra: str) -> list[str]:
    return ["split", str(source), "--out", str(out), "--model", "m", "--quiet", *extra]


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.startswith("batchkit: error: ") and done.stderr.count("\n") == 1, done.stderr
    assert all(f in done.stderr for f in fragments), done.stderr


def test_a_corrupt_file_in_the_id_check_is_one_line(tmp_path):
    """DuckDB reads the ids before pyarrow reads any row: its error names the file, not a traceback."""
    path = tmp_path / "p" / "b.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({"id": [1], "text": ["x"]}), tmp_path / "p" / "a.parquet")
    pq.write_table(pa.table({"id": range(5000), "text": [f"t{i}" for i in range(5000)]}), path)
    corrupt_data_pages(path)
    done = batchkit(*split_args(tmp_path / "p", tmp_path / "o", "--prompt-column", "text", "--id-column", "id"))
    assert_one_line_error(done, f"{path}: column 'id'")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("values", "kind"), [([["a"], ["b"]], "list<"), ([{"a": "x"}, {"a": "y"}], "struct<")], ids=["list", "struct"]
)
def test_a_nested_column_in_a_template_is_named_with_its_type(tmp_path, values, kind):
    src = tmp_path / "a.parquet"
    pq.write_table(pa.table({"tags": values, "text": ["x", "y"]}), src)
    done = batchkit(*split_args(src, tmp_path / "o", "--prompt-template", "{text}: {tags}"))
    assert_one_line_error(done, f"{src}: column 'tags' of type {kind}")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_an_out_that_cannot_be_created_is_one_line(tmp_path, where):
    """Root ignores permissions, so the out sits under a regular file or in /proc: both fail for root too."""
    src = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": ["x"]}), src)
    out = src / "o" if where == "under a file" else f"/proc/batchkit-{tmp_path.name}/o"
    done = batchkit(*split_args(src, out, "--prompt-column", "text"))
    assert_one_line_error(done, f"--out {out}: cannot create it")


@pytest.mark.parametrize("side", ["source", "out"])
def test_missing_s3_credentials_say_how_to_provide_them(tmp_path, side):
    src = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": ["x"]}), src)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # never reached: signing a request needs the credentials first
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    source, out = ("s3://bucket/p/", tmp_path / "o") if side == "source" else (src, "s3://bucket/o")
    done = batchkit(*split_args(source, out, "--prompt-column", "text"), env=env)
    assert_one_line_error(done, "no credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def test_columns_differing_only_in_case_are_refused_by_the_duckdb_loader(tmp_path):
    """DuckDB's column names ignore case: 'Text' and 'text' cannot both be columns of one table."""
    results = tmp_path / "r.parquet"
    pq.write_table(pa.table({"id": [1], "Text": ["a"], "text": ["b"]}), results)
    db = tmp_path / "w.duckdb"
    done = batchkit("load", str(results), "--table", "t", "--partition", "p", "--duckdb", str(db))
    assert_one_line_error(done, "'Text'", "'text'")
    assert not db.exists(), "nothing was written"


@pytest.mark.parametrize(
    "where", ["not a duckdb file", "cannot be created", "postgres unreachable", "password in the query"]
)
def test_a_warehouse_that_cannot_be_opened_is_one_line(tmp_path, where):
    results = tmp_path / "r.parquet"
    pq.write_table(pa.table({"id": [1], "text": ["b"]}), results)
    (tmp_path / "junk.db").write_text("not a database")
    target = {
        "not a duckdb file": ("--duckdb", str(tmp_path / "junk.db")),
        "cannot be created": ("--duckdb", f"/proc/batchkit-{tmp_path.name}/w.duckdb"),
        "postgres unreachable": ("--postgres", "postgresql://someone:s3cret@127.0.0.1:9/dwh"),
        "password in the query": ("--postgres", "postgresql://someone@127.0.0.1:9/dwh?password=s3cret"),
    }[where]
    done = batchkit("load", str(results), "--table", "t", "--partition", "p", *target)
    shown = target[1].replace("s3cret", "***")
    assert_one_line_error(done, f"cannot load into {shown}", "nothing was changed")
    assert "s3cret" not in done.stderr
    assert (tmp_path / "junk.db").read_text() == "not a database"


def test_an_invalid_size_says_what_a_size_looks_like(capsys):
    from batchkit.cli import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(
            ["split", "x", "--out", "y", "--model", "m", "--prompt-column", "t", "--max-bytes", "2XB"]
        )
    assert exited.value.code == 2
    assert "--max-bytes: invalid size '2XB': use a number with an optional unit" in capsys.readouterr().err
