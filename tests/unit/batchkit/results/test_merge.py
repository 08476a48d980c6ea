"""Merging the ledger's answers back onto the input rows: every row exactly once, the best answer per request,
only the selected input columns."""

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit.results.merge import merge_partition, merged_schema
from batchkit.results.result_line import Result, parse_line
from batchkit.results.results import from_results, write_results
from batchkit.split.batch_inputs import fingerprints
from batchkit.split.splitter import SplitConfig, split
from tests.helpers import error_line, ok_line


def answers(out: Path, answer: Callable[[dict], Result], attempt: int = 1) -> list[str]:
    """Answer every batch file of the split in ``out`` with ``answer(line)``; the ledger results files written."""
    written = []
    for index, batch_file in enumerate(sorted(out.glob("batch-*.jsonl"))):
        results = [answer(json.loads(raw)) for raw in batch_file.read_bytes().splitlines()]
        target = out.parent / f"{out.name}-results" / f"{attempt}-{index}.parquet"
        write_results(from_results(results), fingerprints(batch_file), attempt, target)
        written.append(str(target))
    return written


def merged_rows(out: Path, result_files: list[str], buckets: int | None = None) -> tuple[dict[str, int], list[dict]]:
    merged = out.parent / f"{out.name}-merged.parquet"
    counts = merge_partition(str(out / "rows.parquet"), result_files, merged, bucket_count=buckets)
    return counts, pq.read_table(merged).to_pylist()


@pytest.mark.parametrize("buckets", [1, 3])
def test_a_later_ok_answer_wins_over_an_earlier_error(tmp_path, write_parquet, buckets):
    src = write_parquet("a.parquet", {"text": ["x", "y", "z", "w"]})
    split(str(src), tmp_path / "o", SplitConfig(model="m", prompt_column="text"))
    first = answers(tmp_path / "o", lambda line: parse_line(error_line(line["custom_id"], 500, "server_error"), "b1"))
    second = answers(tmp_path / "o", lambda line: parse_line(ok_line(line["custom_id"]), "b2"), attempt=2)
    counts, rows = merged_rows(tmp_path / "o", second + first, buckets)
    assert counts["ok"] == 4 and {(r["batch_id"], r["attempts"]) for r in rows} == {("b2", 2)}
    counts, rows = merged_rows(tmp_path / "o", first, buckets)
    assert counts["ok"] == 0 and {r["error_code"] for r in rows} == {"server_error"}


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
    buckets=st.sampled_from([None, 1, 2, 7]),
)
def test_property_split_then_merge_maps_every_row_exactly_once(
    tmp_path_factory, files, max_requests, with_ids, buckets
):
    """Every input row comes back exactly once, carrying the answer to its own request (or 'skipped'), however
    many buckets the merge joins one at a time."""

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

    counts, merged = merged_rows(base / "o", answers(base / "o", echo), buckets)
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


def test_the_merged_columns_are_known_before_any_answer(tmp_path, write_parquet):
    """``merged_schema`` (what the split checks the table against) is what the merge writes."""
    src = write_parquet("a.parquet", {"id": [1, 2], "text": ["a", "b"], "stars": [4.5, None]})
    split(str(src), tmp_path / "o", SplitConfig(model="m", prompt_column="text", id_column="id"))
    merged_rows(tmp_path / "o", answers(tmp_path / "o", lambda line: parse_line(ok_line(line["custom_id"]), "b")))
    rows_schema = pq.read_schema(tmp_path / "o" / "rows.parquet").remove_metadata()
    assert pq.read_schema(tmp_path / "o-merged.parquet").remove_metadata() == merged_schema(rows_schema)


def test_a_merge_the_local_disk_cannot_hold_is_refused_before_any_work(tmp_path, write_parquet, monkeypatch):
    from batchkit.errors import ScratchTooSmall
    from batchkit.results import buckets

    src = write_parquet("a.parquet", {"text": ["x", "y"]})
    split(str(src), tmp_path / "o", SplitConfig(model="m", prompt_column="text"))
    results = answers(tmp_path / "o", lambda line: parse_line(ok_line(line["custom_id"]), "b1"))
    monkeypatch.setattr(buckets, "DISK_FACTOR", 1e12)  # as if the rows were petabytes
    with pytest.raises(ScratchTooSmall, match=r"needs about .* GB of local disk at .* only .* GB are free"):
        merged_rows(tmp_path / "o", results)
    assert not list(tmp_path.glob("o-merged*")) and not list(tmp_path.glob(".merge-spill-*"))
