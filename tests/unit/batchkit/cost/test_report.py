"""The run report: error codes over each request's best answer, and a page that shows the run's numbers."""

import pyarrow as pa
import pyarrow.parquet as pq

from batchkit.cost.report import FileRow, RunReport, chart_png, errors_of, render_html

ANSWERS = [  # custom_id, status, error_code, error_message, attempts, final
    ("a", "error", "server_error", "boom", 1, False),
    ("a", "ok", None, None, 2, True),  # answered later: no error
    ("b", "error", "rate_limit_exceeded", "slow down", 1, False),
    ("b", "error", "batch_expired", "expired", 2, False),  # the latest unfinished failure counts
    ("c", "invalid_output", "output_refused", "no", 1, True),
    ("d", "error", "batch_expired", "expired", 1, False),
    ("e", "error", "invalid_request", "too long", 1, True),  # final: a later unfinished try does not replace it
    ("e", "error", "server_error", "boom", 2, False),
]


def results(rows: list[tuple]) -> pa.Table:
    names = ["custom_id", "status", "error_code", "error_message", "attempts", "final"]
    table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})
    table = table.append_column("fingerprint", pa.array([f"fp-{row[0]}" for row in rows]))
    return table.append_column("recorded_at", pa.array([1000.0 + row[4] for row in rows]))


def test_error_codes_count_each_requests_best_answer_only():
    codes, examples = errors_of([results(ANSWERS)])
    assert codes == [("batch_expired", 2), ("invalid_request", 1), ("output_refused", 1)]
    assert examples == [
        ("batch_expired", "b", "expired"),
        ("batch_expired", "d", "expired"),
        ("invalid_request", "e", "too long"),
        ("output_refused", "c", "no"),
    ]


def test_the_report_and_the_merged_table_pick_the_same_answers(tmp_path):
    """One rule (batchkit.results.answers): the report's errors are exactly the merged table's non-ok rows."""
    from batchkit.results.merge import merge_partition
    from batchkit.results.result_schema import LEDGER_SCHEMA

    ids = sorted({row[0] for row in ANSWERS})
    rows = pa.table({"text": ids, "__custom_id": ids, "__fingerprint": [f"fp-{i}" for i in ids]})
    pq.write_table(rows, tmp_path / "rows.parquet")
    ledger = results(ANSWERS)
    ledger = pa.table(
        {
            f.name: ledger.column(f.name) if f.name in ledger.column_names else pa.nulls(len(ledger), f.type)
            for f in LEDGER_SCHEMA
        },
        schema=LEDGER_SCHEMA,
    )
    pq.write_table(ledger, tmp_path / "answers.parquet")
    merge_partition(str(tmp_path / "rows.parquet"), [str(tmp_path / "answers.parquet")], tmp_path / "m.parquet")
    merged = pq.read_table(tmp_path / "m.parquet").to_pylist()
    table_errors = sorted((r["error_code"], r["custom_id"]) for r in merged if r["status"] != "ok")
    _, examples = errors_of([results(ANSWERS)])
    assert table_errors == sorted((code, custom_id) for code, custom_id, _ in examples)


def test_the_page_holds_the_runs_numbers_and_inlines_its_chart():
    report = RunReport(
        dag_id="dag",
        run_id="run <1>",
        partition="2026-11-24",
        outcome="failed: load",
        estimate={"usd": 0.5, "output_basis": "the body's limit of 10 per request"},
        totals={"requests": 3000, "reused": 7},
        files=[
            FileRow(0, "batch-00000.jsonl", 2000, "completed", 2, 1990, 10, 100_000, 5_000, 0.25, 3725.0),
            FileRow(1, "batch-00001.jsonl", 1000, "not collected"),
        ],
        reconciliation={"input_rows": 3007, "merged": 3007},
        error_codes=[("server_error", 10)],
        examples=[("server_error", "r1", "<boom>")],
    )
    png = chart_png(report)
    page = render_html(report, png)
    assert png.startswith(b"\x89PNG") and "data:image/png;base64," in page
    assert "<th>outcome</th><td>failed: load</td>" in page and "run &lt;1&gt;" in page and "&lt;boom&gt;" in page
    assert "$0.5000" in page and "$0.2500" in page, "estimated and actual cost"
    assert "<td>00000</td><td>completed</td><td>2,000</td><td>2</td><td>1,990</td><td>10</td>" in page
    assert "1h 02m" in page and "<td>00001</td><td>not collected</td>" in page
    assert "<td>input_rows</td><td>3007</td>" in page and "<td>server_error</td><td>10</td>" in page


def test_error_codes_add_up_over_batch_files_read_one_at_a_time():
    first, second = results(ANSWERS[:4]), results(ANSWERS[4:])  # a and b, then c, d and e
    assert errors_of([first, second]) == errors_of([results(ANSWERS)])
    assert errors_of([first, second], examples_per_code=1)[1][0] == ("batch_expired", "b", "expired")
