"""Result parsing: output and error lines of every endpoint, the Arrow fast path against per-line parsing, and
the original request lines selected for a resubmission."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.errors import BatchkitError
from batchkit.results.result_line import parse_line, token_counts
from batchkit.results.result_lines import parse_lines
from batchkit.results.results import result_batches, write_results
from batchkit.split.batch_inputs import request_lines
from batchkit.split.splitter import SplitConfig, split
from tests.helpers import error_line, ok_line


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


def test_request_lines_selects_originals(tmp_path, write_parquet):
    src = write_parquet("a.parquet", {"text": ["x", "y", "z"]})
    split(str(src), tmp_path / "o", SplitConfig(model="m", prompt_column="text"))
    picked = list(request_lines(tmp_path / "o" / "batch-00000.jsonl", {"0-0", "0-2"}))
    assert [json.loads(line)["body"]["messages"][0]["content"] for line in picked] == ["x", "z"]


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


def cached_line(custom_id: str, cached: int) -> dict:
    """A chat answer whose usage reports ``cached`` prompt tokens read from the cache (as OpenAI and Azure do)."""
    line = ok_line(custom_id)
    usage = {"prompt_tokens": 100, "completion_tokens": 2, "total_tokens": 102}
    usage |= {"prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0}}
    line["response"]["body"]["usage"] = usage
    return line


def test_cached_prompt_tokens_reach_the_ledger_by_either_parser(tmp_path):
    lines = write_jsonl(tmp_path / "o.jsonl", [cached_line("a", 64), ok_line("b"), error_line("c", 500, None)])
    fast = pa.Table.from_batches(list(result_batches([lines], "b1")))
    slow = pa.Table.from_batches(list(result_batches([lines], "b1", per_line=True)))
    assert fast.to_pylist() == slow.to_pylist()
    assert fast.column("cached_tokens").to_pylist() == [64, None, None]
    out = tmp_path / "ledger.parquet"
    write_results(lambda per_line: result_batches([lines], "b1", per_line), {"a": "f", "b": "g", "c": "h"}, 1, out)
    table = pq.read_table(out)
    assert table.column("cached_tokens").to_pylist() == [64, None, None]
    assert table.column("prompt_tokens").to_pylist() == [100, 10, None], "prompt_tokens still counts them all"


def test_token_counts_of_responses_and_anthropic_usage():
    responses = {
        "input_tokens": 50,
        "output_tokens": 5,
        "total_tokens": 55,
        "input_tokens_details": {"cached_tokens": 20},
    }
    assert token_counts(responses) == (50, 5, 55, 20, None)
    anthropic = {
        "input_tokens": 10,
        "cache_read_input_tokens": 300,
        "cache_creation_input_tokens": 40,
        "output_tokens": 7,
    }
    assert token_counts(anthropic) == (350, 7, None, 300, 40), "prompt: every input token, as OpenAI counts them"
    assert token_counts({}) == (None, None, None, None, None)
