"""The splitter's rules: valid request lines, limits, determinism, row mapping and bad input."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit.cli import main
from batchkit.errors import InputError
from batchkit.split.manifest import Manifest
from batchkit.split.splitter import split
from tests.helpers import split_config, split_lines


def test_chat_requests_are_valid_batch_lines(tmp_path, write_parquet):
    src = write_parquet("p/part-0.parquet", {"id": [10, 11], "text": ["hello", "world"]})
    manifest = split(
        str(src),
        tmp_path / "out",
        split_config(id_column="id", system_prompt="Be brief", body_options={"temperature": 0}),
    )
    got = split_lines(tmp_path / "out")
    assert got[0] == {
        "custom_id": "10",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "temperature": 0,
            "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "hello"}],
        },
    }
    assert [line["custom_id"] for line in got] == ["10", "11"]
    assert manifest.totals["requests"] == 2 and manifest.totals["files"] == 1
    on_disk = Manifest.load(tmp_path / "out" / "manifest.json")
    assert (
        on_disk.files[0].requests == 2 and on_disk.files[0].first_row == [0, 0] and on_disk.files[0].last_row == [0, 1]
    )
    assert on_disk.files[0].bytes == (tmp_path / "out" / "batch-00000.jsonl").stat().st_size


@pytest.mark.parametrize("endpoint,key", [("/v1/responses", "input"), ("/v1/embeddings", "input")])
def test_other_endpoints(tmp_path, write_parquet, endpoint, key):
    src = write_parquet("a.parquet", {"text": ["x"]})
    split(str(src), tmp_path / "o", split_config(endpoint=endpoint))
    line = split_lines(tmp_path / "o")[0]
    assert line["url"] == endpoint and line["body"][key] == "x" and line["custom_id"] == "0-0"


def test_embeddings_reject_system_prompt(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["x"]})
    with pytest.raises(InputError, match="system prompt"):
        split(str(src), tmp_path / "o", split_config(endpoint="/v1/embeddings", system_prompt="s"))


def test_files_rotate_on_request_limit_and_split_is_byte_identical(tmp_path, write_parquet):
    write_parquet("dt=1/part-0.parquet", {"text": [f"row {i}" for i in range(25)]})
    write_parquet("dt=1/part-1.parquet", {"text": [f"more {i}" for i in range(10)]})
    (tmp_path / "dt=1" / "_SUCCESS").write_text("")
    first = split(str(tmp_path / "dt=1"), tmp_path / "a", split_config(max_requests=10))
    split(str(tmp_path / "dt=1"), tmp_path / "b", split_config(max_requests=10))
    assert [f.requests for f in first.files] == [10, 10, 10, 5]
    for name in ["batch-00000.jsonl", "batch-00003.jsonl", "manifest.json"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    ids = [line["custom_id"] for line in split_lines(tmp_path / "a")]
    assert len(set(ids)) == 35 and ids[25] == "1-0"
    assert first.files[2].first_row == [0, 20] and first.files[2].last_row == [1, 4]


def test_files_rotate_on_byte_and_token_limits(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["x" * 100] * 20})
    by_bytes = split(str(src), tmp_path / "b", split_config(max_bytes=700))
    assert all(f.bytes <= 700 for f in by_bytes.files) and by_bytes.totals["requests"] == 20
    assert len(by_bytes.files) > 1
    by_tokens = split(str(src), tmp_path / "t", split_config(max_tokens=100))
    assert all(f.estimated_tokens <= 100 for f in by_tokens.files) and by_tokens.totals["requests"] == 20
    assert next(f.requests for f in by_tokens.files) == 3  # 100 chars -> 25 + 8 tokens each


def test_single_oversized_row_fails_and_leaves_nothing(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["short", "y" * 5000]})
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"a.parquet: row 1: .*over the 1,000-byte limit"):
        split(str(src), out, split_config(max_bytes=1000))
    with pytest.raises(InputError, match=r"row 1: .*over the --max-tokens budget of 100"):
        split(str(src), out, split_config(max_tokens=100))
    assert not out.exists() and list(tmp_path.iterdir()) == [src]


def test_missing_columns_are_named(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"body": ["x"]})
    with pytest.raises(InputError, match=r"a.parquet: column\(s\) 'text' not found; available columns: body"):
        split(str(src), tmp_path / "o", split_config())
    with pytest.raises(InputError, match="'nope' not found"):
        split(str(src), tmp_path / "o", split_config(prompt_template="{body} {nope}"))


def test_null_and_empty_prompts_are_skipped_and_reported(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["ok", None, "", "  \n", "fine"]})
    manifest = split(str(src), tmp_path / "o", split_config())
    assert [line["custom_id"] for line in split_lines(tmp_path / "o")] == ["0-0", "0-4"]
    assert manifest.skipped.count == 3 and [e["row"] for e in manifest.skipped.examples] == [1, 2, 3]
    assert manifest.totals == {
        "files": 1,
        "requests": 2,
        "bytes": manifest.files[0].bytes,
        "estimated_tokens": manifest.files[0].estimated_tokens,
        "rows_read": 5,
        "rows_skipped": 3,
        "new": 2,
        "changed": 0,
        "retried": 0,
        "reused": 0,
    }


def test_null_template_value_skips_the_row(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"a": ["x", None], "b": [1, 2]})
    manifest = split(str(src), tmp_path / "o", split_config(prompt_template="{a}/{b}"))
    assert [line["body"]["messages"][0]["content"] for line in split_lines(tmp_path / "o")] == ["x/1"]
    assert manifest.skipped.count == 1


def test_empty_partition_writes_no_batch_file(tmp_path, write_parquet):
    (tmp_path / "empty").mkdir()
    manifest = split(str(tmp_path / "empty"), tmp_path / "o", split_config())
    assert manifest.totals["files"] == 0 and manifest.sources == []
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["manifest.json", "rows.parquet"]
    zero_rows = write_parquet("z.parquet", pa.table({"text": pa.array([], pa.string())}))
    assert split(str(zero_rows), tmp_path / "o2", split_config()).totals["requests"] == 0


def test_template_values_are_data_not_code(tmp_path, write_parquet):
    hostile = ["{text}", "{0.__class__}", "__import__('os').system('x')", "{{}}", "%s %(x)s"]
    src = write_parquet("a.parquet", {"text": hostile})
    split(str(src), tmp_path / "o", split_config(prompt_template="Say: {text} {{literal}}"))
    got = [line["body"]["messages"][0]["content"] for line in split_lines(tmp_path / "o")]
    assert got == [f"Say: {h} {{literal}}" for h in hostile]


@pytest.mark.parametrize(
    "template", ["{text.upper}", "{text[0]}", "{text!r}", "{text:>10}", "{}", "no placeholder", "{unclosed"]
)
def test_bad_templates(tmp_path, write_parquet, template):
    src = write_parquet("a.parquet", {"text": ["x"]})
    with pytest.raises(InputError, match=r"template|placeholder"):
        split(str(src), tmp_path / "o", split_config(prompt_template=template))


def test_exact_tokens_use_the_offline_tokenizer(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["hello world", "héllo 🎉 مرحبا"]})
    manifest = split(str(src), tmp_path / "o", split_config(exact_tokens=True))
    import tiktoken

    enc = tiktoken.get_encoding("o200k_base")  # served from the cache batchkit filled; no network here
    expected = sum(len(enc.encode(t)) + 8 for t in ["hello world", "héllo 🎉 مرحبا"])
    assert manifest.files[0].estimated_tokens == expected


def test_body_options_cannot_override_model_or_prompt(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["x"]})
    with pytest.raises(InputError, match="must not set model"):
        split(str(src), tmp_path / "o", split_config(body_options={"model": "other"}))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), [1.0, float("-inf")]])
def test_body_options_that_are_not_json_are_refused_not_sent_as_null(tmp_path, write_parquet, bad):
    src = write_parquet("a.parquet", {"text": ["x"]})
    with pytest.raises(InputError, match=r"body options\.(temperature|logit_bias).* is not a JSON number"):
        split(str(src), tmp_path / "o", split_config(body_options={"temperature": 0, "logit_bias": {"5": bad}}))
    assert not (tmp_path / "o").exists()


def test_cli_split_and_errors(tmp_path, write_parquet, capsys):
    src = write_parquet("a.parquet", {"id": ["a", "b", "c"], "text": ["x", "y", "z"]})
    rc = main(
        [
            "split",
            str(src),
            "--out",
            str(tmp_path / "o"),
            "--model",
            "m",
            "--prompt-column",
            "text",
            "--id-column",
            "id",
            "--max-requests",
            "2",
            "--max-bytes",
            "1MB",
            "--body-json",
            '{"temperature": 0}',
        ]
    )
    assert rc == 0 and "wrote 2 batch file(s) with 3 requests" in capsys.readouterr().out
    rc = main(["split", str(src), "--out", str(tmp_path / "o2"), "--model", "m", "--prompt-column", "nope"])
    assert rc == 2 and "column(s) 'nope' not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            [
                "split",
                str(src),
                "--out",
                str(tmp_path / "o3"),
                "--model",
                "m",
                "--prompt-column",
                "text",
                "--max-bytes",
                "lots",
            ]
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=60),
    max_requests=st.integers(1, 20),
    max_bytes=st.integers(2_000, 6_000),
)
def test_property_limits_and_round_trip(tmp_path_factory, texts, max_requests, max_bytes):

    base = tmp_path_factory.mktemp("prop")
    pq.write_table(pa.table({"text": texts}), base / "a.parquet")
    manifest = split(str(base / "a.parquet"), base / "o", split_config(max_requests=max_requests, max_bytes=max_bytes))
    for entry in manifest.files:
        assert entry.requests <= max_requests and entry.bytes <= max_bytes
        assert entry.bytes == (base / "o" / entry.path).stat().st_size
    kept = [t for t in texts if t.strip()]
    assert [line["body"]["messages"][0]["content"] for line in split_lines(base / "o")] == kept
    assert manifest.totals["rows_skipped"] == len(texts) - len(kept)


def test_too_many_files_are_refused_before_anything_is_written(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": [f"row {i}" for i in range(30)]})
    with pytest.raises(
        InputError, match=r"30 rows: at 10 requests per file that is at least 3 batch files, over the limit of 2"
    ):
        split(str(src), tmp_path / "o", split_config(max_requests=10, max_files=2))
    with pytest.raises(InputError, match=r"needs more than 3 batch files \(reached at row \d+ of source file 0\)"):
        split(str(src), tmp_path / "o", split_config(max_requests=10, max_bytes=400, max_files=3))
    assert not (tmp_path / "o").exists()
    assert split(str(src), tmp_path / "o", split_config(max_requests=10, max_files=3)).totals["files"] == 3


def test_each_file_is_handed_over_as_soon_as_it_is_complete(tmp_path, write_parquet):
    import hashlib

    src = write_parquet("a.parquet", {"text": [f"row {i}" for i in range(25)]})
    published = tmp_path / "published"
    published.mkdir()
    handed: list[str] = []

    def publish(path: Path) -> None:
        handed.append(path.name)
        path.rename(published / path.name)  # moved away at once: never all on local disk together

    manifest = split(str(src), tmp_path / "o", split_config(max_requests=10), on_file=publish)
    assert handed == ["batch-00000.jsonl", "batch-00001.jsonl", "batch-00002.jsonl"]
    assert not list((tmp_path / "o").glob("batch-*"))
    for entry in manifest.files:
        assert hashlib.sha256((published / entry.path).read_bytes()).hexdigest() == entry.sha256
