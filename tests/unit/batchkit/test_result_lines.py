"""Per-line result parsing on two processes: the same batches as one process, in file order, and a bad line in
the child's half named by its line number in the file."""

import json
import subprocess

import pyarrow as pa
import pytest

from batchkit import result_lines
from batchkit.errors import ResultsUnreadable
from tests.helpers import error_line


def embedding_line(custom_id: str, values: list[float]) -> dict:
    body = {"object": "list", "data": [{"embedding": values}], "model": "m", "usage": {"prompt_tokens": 2}}
    return {"custom_id": custom_id, "response": {"status_code": 200, "body": body}, "error": None}


@pytest.fixture
def children(monkeypatch):
    """Every file is parsed on two processes; the list holds the child processes started."""
    started = []
    real = subprocess.Popen

    def spy(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(result_lines, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(result_lines.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(result_lines.subprocess, "Popen", spy)
    return started


def test_two_processes_give_the_batches_of_one(tmp_path, children):
    lines = [
        error_line(str(i), 500, None) if i % 7 == 0 else embedding_line(str(i), [i / 3, -i / 7] * (1 + i % 3))
        for i in range(3000)
    ]
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"".join(json.dumps(line).encode() + b"\n" for line in lines))

    both = pa.Table.from_batches(list(result_lines.line_batches(path, "b")))
    assert len(children) == 1 and children[0].returncode == 0
    one = pa.Table.from_batches(list(result_lines._batches(path, "b", 0, path.stat().st_size)))
    assert both.equals(one)
    assert both.column("custom_id").to_pylist() == [str(i) for i in range(3000)]
    assert both.column("embedding")[0].as_py() is None
    assert both.column("embedding")[1].as_py() == pytest.approx([1 / 3, -1 / 7] * 2)
    assert list(tmp_path.iterdir()) == [path]  # the child's scratch is gone


def test_a_bad_line_in_the_second_half_is_named_by_its_line_number(tmp_path, children):
    good = json.dumps(embedding_line("a", [0.5])).encode() + b"\n"
    path = tmp_path / "out.jsonl"
    path.write_bytes(good * 90 + b"{not json\n" + good * 9)
    with pytest.raises(ResultsUnreadable, match=r"out.jsonl: line 91 is not a valid batch result"):
        list(result_lines.line_batches(path, "b"))
    assert len(children) == 1


def test_a_one_line_file_leaves_the_child_nothing(tmp_path, children):
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps(embedding_line("a", [0.25, 0.5])) + "\n")
    table = pa.Table.from_batches(list(result_lines.line_batches(path, "b")))
    assert table.column("embedding").to_pylist() == [[0.25, 0.5]]
