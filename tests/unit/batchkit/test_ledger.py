"""The request ledger: fingerprints, claims, reuse in the split, the best answer in the merge, corrupt files."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.errors import LedgerError
from batchkit.ledger import Ledger
from batchkit.results.merge import merge_partition
from batchkit.results.result_line import Result
from batchkit.results.results import from_results, write_results
from batchkit.split.batch_inputs import fingerprints
from batchkit.split.splitter import SplitConfig, split
from tests.helpers import split_lines


def cfg(**kw) -> SplitConfig:
    return SplitConfig(model="gpt-4o-mini", prompt_template="Review: {text}", id_column="id", **kw)


def answer(ledger: Ledger, batch_file: Path, tmp_path: Path, batch_id: str, statuses: dict[str, str]) -> None:
    """Answer the requests of ``batch_file`` as a batch would: ok (echo), or an error code per custom_id."""
    prints = fingerprints(batch_file)
    results = []
    for raw in batch_file.read_bytes().splitlines():
        line = json.loads(raw)
        code = statuses.get(line["custom_id"], "ok")
        if code == "ok":
            text = "echo: " + line["body"]["messages"][-1]["content"]
            results.append(Result(line["custom_id"], batch_id, "ok", http_status=200, response_text=text))
        else:
            status = {"batch_expired": None, "invalid_prompt": 400}[code]
            results.append(Result(line["custom_id"], batch_id, "error", http_status=status, error_code=code))
    local = tmp_path / f"{batch_id}.parquet"
    write_results(from_results(results), prints, 1, local, expected=len(prints))
    ledger.record_results(batch_id, local)


def sent(directory: Path) -> list[str]:
    return [line["custom_id"] for line in split_lines(directory)]


def table(rows: int, changed: dict[int, str] | None = None) -> pa.Table:
    texts = [(changed or {}).get(i, f"text {i}") for i in range(rows)]
    return pa.table({"id": list(range(rows)), "text": texts, "stars": [i % 5 for i in range(rows)]})


def test_a_rerun_sends_only_new_changed_and_unanswered_requests(tmp_path, write_parquet):
    ledger = Ledger(str(tmp_path / "ledger"))
    source = write_parquet("src/a.parquet", table(100))
    first = split(str(source), tmp_path / "run1", cfg())
    assert first.totals["new"] == 100 and len(sent(tmp_path / "run1")) == 100
    answer(
        ledger,
        tmp_path / "run1" / "batch-00000.jsonl",
        tmp_path,
        "batch_1",
        {"3": "batch_expired", "4": "invalid_prompt"},
    )

    pq.write_table(pa.concat_tables([table(110, {7: "new words", 8: "other words"})]), source)
    second = split(str(source), tmp_path / "run2", cfg(), answered=ledger.answered())
    assert sorted(sent(tmp_path / "run2"), key=int) == ["3", "7", "8", *map(str, range(100, 110))]
    assert {k: second.totals[k] for k in ("new", "changed", "retried", "reused")} == {
        "new": 10,
        "changed": 2,
        "retried": 1,
        "reused": 97,  # "4" failed with a 400: the same body would fail again, so it is not re-sent
    }
    answer(ledger, tmp_path / "run2" / "batch-00000.jsonl", tmp_path, "batch_2", {})

    merged = tmp_path / "merged.parquet"
    counts = merge_partition(str(tmp_path / "run2" / "rows.parquet"), ledger.result_files(), merged)
    assert counts == {"rows": 110, "ok": 109, "errors": 1, "invalid": 0, "unanswered": 0}
    rows = {r["id"]: r for r in pq.read_table(merged).to_pylist()}
    assert sorted(rows) == list(range(110))  # every row once
    assert rows[7]["response_text"] == "echo: Review: new words"  # the current prompt's answer, not the old one
    assert rows[3]["response_text"] == "echo: Review: text 3" and rows[3]["batch_id"] == "batch_2"
    assert rows[4]["error_code"] == "invalid_prompt" and rows[50]["batch_id"] == "batch_1"
    assert rows[50]["stars"] == 0 and rows[50]["custom_id"] == "50"


def test_merge_marks_skipped_rows_and_counts_requests_without_an_answer(tmp_path, write_parquet):
    source = write_parquet("src/a.parquet", {"id": [1, 2, 3], "text": ["a", None, "c"]})
    split(str(source), tmp_path / "run", SplitConfig(model="m", prompt_column="text", id_column="id"))
    counts = merge_partition(str(tmp_path / "run" / "rows.parquet"), [], tmp_path / "m.parquet")
    assert counts == {"rows": 3, "ok": 0, "errors": 3, "invalid": 0, "unanswered": 2}
    codes = {r["id"]: r["error_code"] for r in pq.read_table(tmp_path / "m.parquet").to_pylist()}
    assert codes == {1: "no_result", 2: "skipped", 3: "no_result"}


def test_claims_have_one_winner_and_remember_the_batch(tmp_path):
    ledger = Ledger(str(tmp_path / "ledger"))
    assert ledger.claim("k1", "dag/run_a/submit[0]", "sha") is None
    other = ledger.claim("k1", "dag/run_b/submit[0]", "sha")
    assert other is not None and other.owner == "dag/run_a/submit[0]" and other.batch_id is None
    ledger.record_batch(other, "batch_9")
    assert ledger.claim_of("k1").batch_id == "batch_9" and ledger.claim_of("k2") is None


def test_a_corrupt_ledger_stops_instead_of_re_billing(tmp_path):
    ledger = Ledger(str(tmp_path / "ledger"))
    (tmp_path / "ledger" / "batches").mkdir(parents=True)
    (tmp_path / "ledger" / "batches" / "k.json").write_text("{not json")
    with pytest.raises(LedgerError, match=r"k.json is corrupt.*nothing is created until it is repaired"):
        ledger.claim("k", "me", "sha")
    (tmp_path / "ledger" / "results").mkdir()
    (tmp_path / "ledger" / "results" / "b.parquet").write_bytes(b"PAR1 broken")
    (tmp_path / "ledger" / "results" / "b.parquet.done").write_bytes(b"")
    with pytest.raises(LedgerError, match=r"b.parquet cannot be read.*nothing is re-sent"):
        ledger.answered()


def test_results_that_do_not_match_the_batch_are_refused(tmp_path):
    from batchkit.errors import BatchkitError, TransientError

    with pytest.raises(BatchkitError, match="custom_id 'x'"):
        write_results(from_results([Result("x", "b", "ok", http_status=200)]), {"a": "f"}, 1, tmp_path / "r.parquet")
    with pytest.raises(TransientError, match="reports 2 requests but its files hold 1"):
        write_results(
            from_results([Result("a", "b", "ok", http_status=200)]), {"a": "f"}, 1, tmp_path / "r.parquet", expected=2
        )


def test_results_files_from_before_the_cache_columns_still_read_bill_and_merge(tmp_path, write_parquet):
    from batchkit.cost.usage import USAGE_COLUMNS, usage_by_batch
    from batchkit.results.result_schema import CACHE_SCHEMA

    ledger = Ledger(str(tmp_path / "ledger"))
    source = write_parquet("src/a.parquet", table(4))
    split(str(source), tmp_path / "run1", cfg())
    prints = fingerprints(tmp_path / "run1" / "batch-00000.jsonl")
    ids = sorted(prints)
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    answered = [Result(c, "b_old", "ok", http_status=200, model="gpt-4o-mini", prompt_tokens=1000) for c in ids[:2]]
    write_results(from_results(answered), prints, 1, old)
    pq.write_table(pq.read_table(old).drop_columns(CACHE_SCHEMA.names), old)  # as an older version wrote it
    ledger.record_results("b_old", old)
    cached = [
        Result(c, "b_new", "ok", http_status=200, model="gpt-5", prompt_tokens=1000, cached_tokens=800) for c in ids[2:]
    ]
    write_results(from_results(cached), prints, 1, new)
    ledger.record_results("b_new", new)
    read = ledger.read_results(["b_old", "b_new"], USAGE_COLUMNS)
    assert read.column("cached_tokens").to_pylist() == [None, None, 800, 800]
    used = usage_by_batch(ledger.each_result(["b_old", "b_new"], USAGE_COLUMNS))
    assert used["b_old"]["usd"] == pytest.approx(2000 * 0.075 / 1e6), "an old file: all input at the full rate"
    assert used["b_new"]["usd"] == pytest.approx(2 * (200 * 0.625 + 800 * 0.0625) / 1e6)
    merged = tmp_path / "merged.parquet"
    counts = merge_partition(str(tmp_path / "run1" / "rows.parquet"), ledger.result_files(), merged)
    assert counts["ok"] == 4 and not set(CACHE_SCHEMA.names) & set(pq.read_schema(merged).names)
    recorded = ledger.results_url("b_new")
    pq.write_table(pq.read_table(recorded).drop_columns(["fingerprint"]), recorded)  # only cache columns may lack
    with pytest.raises(LedgerError, match="cannot be read"):
        ledger.read_results(["b_new"], ["custom_id", "fingerprint"])
