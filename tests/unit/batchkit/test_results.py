"""Result parsing, retry selection and merging results back onto input rows."""

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit.batch_inputs import fingerprints, request_lines
from batchkit.errors import BatchkitError
from batchkit.merge import merge_partition
from batchkit.results import Result, from_results, parse_line, parse_lines, result_batches, write_results
from batchkit.splitter import SplitConfig, split


def ok_line(custom_id: str, text: str = "fine") -> dict:
    return {
        "id": "batch_req_1",
        "custom_id": custom_id,
        "error": None,
        "response": {
            "status_code": 200,
            "request_id": "req_1",
            "body": {
                "object": "chat.completion",
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
            },
        },
    }


def error_line(custom_id: str, status: int | None, code: str | None, message: str = "boom") -> dict:
    if status is None:
        return {"id": "x", "custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}
    return {
        "id": "x",
        "custom_id": custom_id,
        "error": None,
        "response": {"status_code": status, "request_id": "r", "body": {"error": {"code": code, "message": message}}},
    }


def test_parse_ok_and_error_lines():
    ok = parse_line(ok_line("a", "positive"), "b1")
    assert (ok.status, ok.response_text, ok.prompt_tokens, ok.total_tokens, ok.model) == (
        "ok",
        "positive",
        10,
        12,
        "gpt-4o-mini",
    )
    server = parse_line(error_line("b", 500, None), "b1")
    assert server.status == "error" and server.error_code == "http_500" and server.retryable
    assert parse_line(error_line("c", 429, "rate_limit_exceeded"), "b1").retryable
    expired = parse_line(error_line("d", None, "batch_expired"), "b1")
    assert expired.retryable and expired.http_status is None
    bad = parse_line(error_line("e", 400, "invalid_request_error", "bad body"), "b1")
    assert not bad.retryable and bad.error_message == "bad body"
    assert not parse_line(error_line("f", None, "batch_cancelled"), "b1").retryable


def test_parse_responses_and_embeddings():
    responses = {
        "custom_id": "a",
        "response": {
            "status_code": 200,
            "body": {
                "object": "response",
                "model": "m",
                "output": [
                    {
                        "type": "message",
                        "content": [{"type": "output_text", "text": "he"}, {"type": "output_text", "text": "llo"}],
                    }
                ],
                "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
            },
        },
        "error": None,
    }
    result = parse_line(responses, "b")
    assert result.response_text == "hello" and result.prompt_tokens == 3 and result.completion_tokens == 1
    embedding = {
        "custom_id": "e",
        "response": {
            "status_code": 200,
            "body": {
                "object": "list",
                "data": [{"embedding": [0.1, 0.2]}],
                "model": "m",
                "usage": {"prompt_tokens": 2},
            },
        },
        "error": None,
    }
    assert parse_line(embedding, "b").embedding == [0.1, 0.2]


def test_parse_lines_names_the_bad_line(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps(ok_line("a")) + "\nnot json\n")
    with pytest.raises(BatchkitError, match=r"out.jsonl: line 2"):
        list(parse_lines(path, "b"))


def answers(out: Path, answer: Callable[[dict], Result], attempt: int = 1) -> list[str]:
    """Answer every batch file of the split in ``out`` with ``answer(line)``; the ledger results files written."""
    written = []
    for index, batch_file in enumerate(sorted(out.glob("batch-*.jsonl"))):
        results = [answer(json.loads(raw)) for raw in batch_file.read_bytes().splitlines()]
        target = out.parent / f"{out.name}-results" / f"{attempt}-{index}.parquet"
        write_results(from_results(results), fingerprints(batch_file), attempt, target)
        written.append(str(target))
    return written


def merged_rows(out: Path, result_files: list[str]) -> tuple[dict[str, int], list[dict]]:
    counts = merge_partition(str(out / "rows.parquet"), result_files, out.parent / f"{out.name}-merged.parquet")
    return counts, pq.read_table(out.parent / f"{out.name}-merged.parquet").to_pylist()


def test_a_later_ok_answer_wins_over_an_earlier_error(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["x", "y"]})
    split(str(src), tmp_path / "o", SplitConfig(model="m", prompt_column="text"))
    first = answers(tmp_path / "o", lambda line: parse_line(error_line(line["custom_id"], 500, "server_error"), "b1"))
    second = answers(tmp_path / "o", lambda line: parse_line(ok_line(line["custom_id"]), "b2"), attempt=2)
    counts, rows = merged_rows(tmp_path / "o", first + second)
    assert counts["ok"] == 2 and {(r["batch_id"], r["attempts"]) for r in rows} == {("b2", 2)}
    counts, rows = merged_rows(tmp_path / "o", first)
    assert counts["ok"] == 0 and {r["error_code"] for r in rows} == {"server_error"}


def test_request_lines_selects_originals(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["x", "y", "z"]})
    split(str(src), tmp_path / "o", SplitConfig(model="m", prompt_column="text"))
    picked = list(request_lines(tmp_path / "o" / "batch-00000.jsonl", {"0-0", "0-2"}))
    assert [json.loads(line)["body"]["messages"][0]["content"] for line in picked] == ["x", "z"]


def test_merge_every_input_row_exactly_once(tmp_path, write_parquet):
    write_parquet("p/a.parquet", {"id": [1, 2, 3, 4], "text": ["a", "", "c", "d"], "extra": [10, 20, 30, 40]})
    write_parquet("p/b.parquet", {"id": [5, 6], "text": ["e", "f"], "extra": [50, 60]})
    manifest = split(
        str(tmp_path / "p"),
        tmp_path / "o",
        SplitConfig(model="m", prompt_column="text", id_column="id", max_requests=2),
    )
    assert [f.requests for f in manifest.files] == [2, 2, 1]

    def answer(line: dict) -> Result:
        cid = line["custom_id"]
        return parse_line(ok_line(cid, f"answer {cid}") if cid != "4" else error_line(cid, 400, "bad"), "b")

    counts, rows = merged_rows(tmp_path / "o", answers(tmp_path / "o", answer))
    assert counts == {"rows": 6, "ok": 4, "errors": 2, "invalid": 0, "unanswered": 0}
    assert sorted(r["id"] for r in rows) == [1, 2, 3, 4, 5, 6]
    by_id = {r["id"]: r for r in rows}
    assert by_id[1]["response_text"] == "answer 1" and by_id[1]["extra"] == 10 and by_id[1]["status"] == "ok"
    assert by_id[2]["status"] == "error" and by_id[2]["error_code"] == "skipped"
    assert by_id[4]["status"] == "error" and by_id[4]["error_code"] == "bad"
    assert by_id[6]["custom_id"] == "6" and by_id[6]["total_tokens"] == 12


def test_merge_by_row_position_counts_missing_results(tmp_path, write_parquet):
    write_parquet("a.parquet", {"text": ["a", "b", "c"]})
    split(str(tmp_path / "a.parquet"), tmp_path / "o", SplitConfig(model="m", prompt_column="text"))
    counts, rows = merged_rows(
        tmp_path / "o", answers(tmp_path / "o", lambda line: parse_line(ok_line(line["custom_id"]), "b"))
    )
    assert sorted(r["custom_id"] for r in rows) == ["0-0", "0-1", "0-2"] and counts["ok"] == 3
    counts, rows = merged_rows(tmp_path / "o", [])
    assert counts["unanswered"] == 3 and {r["error_code"] for r in rows} == {"no_result"}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(
        st.lists(st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=40)), min_size=0, max_size=25),
        min_size=1,
        max_size=4,
    ),
    max_requests=st.integers(1, 12),
    with_ids=st.booleans(),
)
def test_property_split_then_merge_maps_every_row_exactly_once(tmp_path_factory, files, max_requests, with_ids):
    """Every input row comes back exactly once, carrying the answer to its own request (or 'skipped')."""
    import pyarrow as pa

    base = tmp_path_factory.mktemp("roundtrip")
    next_id = 0
    for index, texts in enumerate(files):
        ids = list(range(next_id, next_id + len(texts)))
        next_id += len(texts)
        (base / "p").mkdir(exist_ok=True)
        pq.write_table(
            pa.table({"id": pa.array(ids, pa.int64()), "text": pa.array(texts, pa.string())}),
            base / "p" / f"part-{index}.parquet",
        )
    config = SplitConfig(
        model="m", prompt_column="text", id_column="id" if with_ids else None, max_requests=max_requests
    )
    manifest = split(str(base / "p"), base / "o", config)

    def echo(line: dict) -> Result:
        return parse_line(ok_line(line["custom_id"], "re: " + line["body"]["messages"][0]["content"]), "b")

    counts, merged = merged_rows(base / "o", answers(base / "o", echo))
    all_texts = [t for texts in files for t in texts]
    submitted = [t for t in all_texts if t is not None and t.strip()]
    assert counts["unanswered"] == 0 and counts["ok"] == len(submitted) == manifest.totals["requests"]
    assert sorted(row["id"] for row in merged) == list(range(len(all_texts)))
    for row in merged:
        if row["text"] is not None and row["text"].strip():
            assert row["status"] == "ok" and row["response_text"] == "re: " + row["text"]
        else:
            assert row["status"] == "error" and row["error_code"] == "skipped"


def test_merge_keeps_only_selected_input_columns(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"id": [1, 2], "text": ["a", "b"], "secret": ["x", "y"], "extra": [1, 2]})
    split(str(src), tmp_path / "o", SplitConfig(model="m", prompt_column="text", id_column="id", keep_columns=["text"]))
    _, rows = merged_rows(
        tmp_path / "o", answers(tmp_path / "o", lambda line: parse_line(ok_line(line["custom_id"]), "b"))
    )
    names = list(rows[0])
    assert names[:2] == ["text", "id"] and "secret" not in names and "extra" not in names


def test_templated_lists_are_parsed():
    from openai_batch.operators import as_list

    assert as_list("['a', 'b']") == ["a", "b"] and as_list("a, b") == ["a", "b"]
    assert as_list("") == [] and as_list(["c"]) == ["c"] and as_list(None) == []


def embedding_line(custom_id: str, values: list[float]) -> dict:
    body = {"object": "list", "data": [{"embedding": values}], "model": "m", "usage": {"prompt_tokens": 2}}
    return {"custom_id": custom_id, "response": {"status_code": 200, "body": body}, "error": None}


def write_jsonl(path: Path, lines: list[dict]) -> Path:
    path.write_bytes(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    return path


def test_arrow_reader_agrees_with_per_line_parsing(tmp_path):
    output = write_jsonl(
        tmp_path / "out.jsonl",
        [
            ok_line("a", "positive"),
            ok_line("b", "ünïcode ✓"),
            error_line("d", 500, None),
            error_line("e", 400, "invalid_request_error", "bad body"),
            {**ok_line("f"), "response": {"status_code": 200, "body": {"choices": []}}},
        ],
    )
    errors = write_jsonl(
        tmp_path / "err.jsonl", [error_line("g", None, "batch_expired"), error_line("h", 429, "rate_limit_exceeded")]
    )
    fast = pa.Table.from_batches(list(result_batches([output, errors], "b1")))
    slow = pa.Table.from_batches(list(result_batches([output, errors], "b1", per_line=True)))
    assert fast.to_pylist() == slow.to_pylist()
    rows = {r["custom_id"]: r for r in fast.to_pylist()}
    assert rows["d"]["error_code"] == "http_500"
    assert rows["g"]["error_code"] == "batch_expired" and rows["g"]["http_status"] is None


def test_embeddings_are_parsed_line_by_line_into_float32_lists(tmp_path):
    lines = write_jsonl(tmp_path / "e.jsonl", [embedding_line("a", [0.5, -1.25]), error_line("b", 500, None)])
    out = tmp_path / "ledger.parquet"
    written = write_results(lambda per_line: result_batches([lines], "b", per_line), {"a": "f", "b": "g"}, 1, out)
    table = pq.read_table(out)
    assert written == 2 and table.schema.field("embedding").type == pa.list_(pa.float32())
    assert table.column("embedding").to_pylist() == [[0.5, -1.25], None]


def test_files_arrow_cannot_type_are_parsed_line_by_line(tmp_path):
    responses = {
        "custom_id": "r",
        "error": None,
        "response": {
            "status_code": 200,
            "body": {
                "object": "response",
                "output": [{"type": "message", "content": [{"type": "output_text", "text": "hi"}]}],
            },
        },
    }
    prints = {"r": "f1", "x": "f2"}
    out = tmp_path / "ledger.parquet"
    lines = write_jsonl(tmp_path / "o.jsonl", [responses])
    assert write_results(lambda per_line: result_batches([lines], "b", per_line), prints, 1, out) == 1
    assert pq.read_table(out).column("response_text").to_pylist() == ["hi"]
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(json.dumps(responses).encode() + b"\n{not json\n")
    with pytest.raises(BatchkitError, match=r"broken.jsonl: line 2 is not a valid batch result"):
        write_results(lambda per_line: result_batches([broken], "b", per_line), prints, 1, out)
