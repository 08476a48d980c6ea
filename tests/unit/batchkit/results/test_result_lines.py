"""Per-line result parsing: embeddings read by simdjson into float buffers give what orjson's per-line parse
gives, whatever the line's shape, and a bad line is named by its number."""

import json

import numpy as np
import pyarrow as pa
import pytest

from batchkit.errors import ResultsUnreadable
from batchkit.results.result_lines import Vectors, line_batches, parse_lines
from tests.helpers import error_line, ok_line


def embedding_line(custom_id: str, values: list) -> dict:
    body = {"object": "list", "data": [{"embedding": values}], "model": "m", "usage": {"prompt_tokens": 2}}
    return {"custom_id": custom_id, "response": {"status_code": 200, "body": body}, "error": None}


def test_typed_embeddings_agree_with_per_line_parsing(tmp_path):
    lines = [
        embedding_line("a", [0.1, -2.5e-05, 3]),  # an integer among the floats
        error_line("b", 500, None),
        ok_line("d", "a chat answer"),
        embedding_line("e", []),
        error_line("f", None, "batch_expired"),
    ] + [embedding_line(str(i), list(np.linspace(-1, 1, 7) * i)) for i in range(1500)]
    path = tmp_path / "out.jsonl"
    with path.open("w") as out:  # json.dumps' ", " and ": " separators, as the API writes them
        out.writelines(json.dumps(line) + "\n" for line in lines)

    typed = pa.Table.from_batches(list(line_batches(path, "b1")))
    results = list(parse_lines(path, "b1"))
    expected = Vectors.of(r.embedding if r.status == "ok" else None for r in results)
    assert typed.num_rows == len(lines) and typed.column("custom_id").to_pylist() == [r.custom_id for r in results]
    assert typed.column("embedding").equals(pa.chunked_array([expected]))
    for name in ("status", "error_code", "model", "prompt_tokens", "response_text", "http_status"):
        assert typed.column(name).to_pylist() == [getattr(r, name) for r in results], name
    assert typed.column("embedding")[0].as_py() == pytest.approx([0.1, -2.5e-05, 3.0])


def test_a_bad_line_is_named_by_its_number(tmp_path):
    good = json.dumps(embedding_line("a", [0.5])) + "\n"
    path = tmp_path / "out.jsonl"
    path.write_text(good * 90 + "{not json\n" + good * 9)
    with pytest.raises(ResultsUnreadable, match=r"out.jsonl: line 91 is not a valid batch result"):
        list(line_batches(path, "b"))
