"""Exactly-once across ordinary operations, on the real Airflow components with the emulator (one shared stack;
the emulator is restarted with other fault settings where a test needs them). Each test uses its own partition
and counts what the emulator was sent, not just whether the run succeeded.

(a) expiry, then a clear of the whole run: no request answered in the first run is sent again
(b) a good run, then a rerun with a new prompt whose batches expire: the table is unchanged, the run fails naming
    the staged results
(c) a rerun after adding 10% rows and changing 5% of prompts: exactly those requests are sent
(d) two runs of one partition at once: one batch per file, rows once
(e) the source rewritten between split and collect: every row keeps the answer to its own prompt
(f) (a) on Anthropic Message Batches (the shipped DAG with an ``anthropic`` connection): unfinished requests come back
    ``expired``; a clear sends exactly the requests no batch answered, counted from the message batches' results

The stack keeps the batches' files at the vendor (``OPENAI_BATCH_KEEP_VENDOR_FILES``), so the tests can read what
was sent from the input files; (c) checks they stay, with the lifetime they were uploaded and created with.
"""

from collections.abc import Iterator

import duckdb
import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from batchkit.dev.devstack import Stack
from batchkit.emulator.launcher import free_port
from tests.helpers import (
    anthropic_connection,
    emulator_objects,
    emulator_settings,
    message_batch_requests,
    message_batches,
    running_stack,
)

DAG_ID = "openai_batch_inference"
NORMAL = ("--seconds-per-request", "0.002", "--validation-seconds", "1")
EXPIRING = ("--expire-rate", "1", "--completion-window-seconds", "6", "--seconds-per-request", "0.005")
PARTITIONS = {"2026-11-10": 1200, "2026-11-11": 600, "2026-11-12": 1000, "2026-11-13": 1000, "2026-11-14": 900}
PARTITIONS["2026-11-15"] = 40  # (f), on Anthropic
CLAUDE = {"conn_id": "anthropic_emulator", "model": "claude-haiku-4-5"}
ECHO = {"prompt_template": "", "prompt_column": "text", "system_prompt": ""}  # answers are "echo: <text[:200]>"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    port = free_port()
    keep = {"OPENAI_BATCH_KEEP_VENDOR_FILES": "true"}  # what was sent stays readable at the emulator
    settings = {"emulator_port": port, "extra_env": {**anthropic_connection(port), **keep}}
    with running_stack(
        tmp_path_factory.mktemp("ledger"), PARTITIONS, DAG_ID, poll_seconds=1, emulator_args=NORMAL, **settings
    ) as stack:
        yield stack


def run(stack: Stack, run_id: str, conf: dict, timeout: float = 420) -> dict:
    stack.trigger(DAG_ID, run_id, conf)
    return stack.wait_for_run(DAG_ID, run_id, timeout=timeout, progress=lambda message: None)


def batches_of(stack: Stack, partition: str) -> list[dict]:
    return [b for b in emulator_objects(stack, "batches") if (b["metadata"] or {}).get("partition") == partition]


def sent_ids(stack: Stack, batches: list[dict]) -> list[str]:
    """The custom_ids in the input files of ``batches`` (what was paid for)."""
    import json

    ids = []
    for batch in batches:
        content = httpx.get(f"{stack.emulator.base_url}/files/{batch['input_file_id']}/content", timeout=30).content
        ids += [json.loads(line)["custom_id"] for line in content.splitlines() if line.strip()]
    return ids


def table(stack: Stack, partition: str, columns: str = "*") -> list[dict]:
    if not stack.duckdb_path.exists():
        return []
    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        cursor = con.execute(f"SELECT {columns} FROM review_sentiment WHERE partition_key = ?", [partition])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def ledger_answers(stack: Stack, partition: str) -> pa.Table:
    results = stack.data_dir / "staging" / DAG_ID / partition / "_ledger" / "results"
    return pa.concat_tables(pq.read_table(p, columns=["custom_id", "status"]) for p in results.glob("*.parquet"))


def test_a_expiry_then_clear_of_the_run_sends_only_unanswered_requests(stack):
    partition, rows = "2026-11-10", PARTITIONS["2026-11-10"]
    conf = {"partition": partition, "max_requests_per_file": 300, "max_attempts": 2, "max_error_rate": 0.05}
    with emulator_settings(stack, *EXPIRING):
        first = run(stack, "a_1", conf)
    assert first["state"] == "failed"  # too many unanswered lines: the load refused
    assert {t["task_id"]: t["state"] for t in first["tasks"]}["load"] == "failed"
    expired = batches_of(stack, partition)
    assert {b["status"] for b in expired} == {"expired"} and len(expired) == 2 * (rows // 300)  # attempts bounded
    answers = ledger_answers(stack, partition)
    answered = set(answers.filter(pc.equal(answers.column("status"), "ok")).column("custom_id").to_pylist())
    assert 0 < len(answered) < rows
    assert table(stack, partition) == [], "a refused load must not touch the table"

    stack.clear(DAG_ID, "a_1")
    again = stack.wait_for_run(DAG_ID, "a_1", timeout=420, progress=lambda message: None)
    assert again["state"] == "success", again["tasks"]
    resent = sent_ids(stack, [b for b in batches_of(stack, partition) if b["id"] not in {e["id"] for e in expired}])
    assert not answered & set(resent), "a request answered before the clear was paid for again"
    assert sorted(resent, key=int) == sorted({str(i) for i in range(rows)} - answered, key=int)
    loaded = table(stack, partition, "review_id, status")
    assert len(loaded) == rows and len({r["review_id"] for r in loaded}) == rows
    assert {r["status"] for r in loaded} == {"ok"}


def test_b_a_failing_rerun_leaves_a_good_partition_as_it_was(stack):
    partition, rows = "2026-11-11", PARTITIONS["2026-11-11"]
    good = run(stack, "b_1", {"partition": partition, "max_requests_per_file": 300})
    assert good["state"] == "success", good["tasks"]
    before = sorted(table(stack, partition, "review_id, status, response_text, dag_run_id"), key=str)
    assert len(before) == rows and {r["status"] for r in before} == {"ok"}
    with emulator_settings(stack, *EXPIRING):  # a new prompt: every request is sent again, and half expire
        conf = {"partition": partition, "max_requests_per_file": 300, "max_attempts": 1, "system_prompt": "Be terse."}
        bad = run(stack, "b_2", conf)
    assert bad["state"] == "failed"
    assert sorted(table(stack, partition, "review_id, status, response_text, dag_run_id"), key=str) == before
    log = "".join(p.read_text() for p in (stack.airflow_home / "logs").rglob("run_id=b_2/task_id=load/*.log"))
    assert "the table was left unchanged; the merged results are kept at" in log
    area = stack.data_dir / "staging" / DAG_ID / partition / "b_2"
    assert (area / "merged" / "result.parquet").exists()
    report = (area / "report" / "report.html").read_text()  # the refused load's numbers are in the report
    assert "failed: load" in report and "the load did not run" not in report
    assert f"<tr><td>input_rows</td><td>{rows}</td></tr>" in report
    assert f"<tr><td>merged</td><td>{rows}</td></tr>" in report


def test_c_a_rerun_sends_only_new_and_changed_requests(stack):
    partition, rows = "2026-11-12", PARTITIONS["2026-11-12"]
    conf = {"partition": partition, "max_requests_per_file": 400, **ECHO}
    assert run(stack, "c_1", conf)["state"] == "success"
    before = {b["id"] for b in batches_of(stack, partition)}
    kept = {f["id"]: f for f in emulator_objects(stack, "files")}
    for batch in batches_of(stack, partition):  # kept by the setting, each with the lifetime it was given (7 days)
        for kind in ("input_file_id", "output_file_id"):
            assert kept[batch[kind]]["expires_at"] - kept[batch[kind]]["created_at"] == 7 * 86400, kind

    source = stack.data_dir / "reviews" / f"dt={partition}"
    parts = sorted(source.glob("*.parquet"))
    first = pq.read_table(parts[0])
    changed_ids = first.column("review_id").to_pylist()[:50]  # 5% of the partition
    texts = [
        f"changed prompt {i}" if i in changed_ids else t
        for i, t in zip(first.column("review_id").to_pylist(), first.column("text").to_pylist())
    ]
    pq.write_table(first.set_column(first.schema.get_field_index("text"), "text", pa.array(texts)), parts[0])
    new_ids = list(range(10_000_000, 10_000_100))  # 10% more rows
    extra = pa.table(
        {
            "review_id": pa.array(new_ids, pa.int64()),
            "product": ["lamp"] * 100,
            "stars": pa.array([3] * 100, pa.int8()),
            "text": [f"new review {i}" for i in new_ids],
        }
    )
    pq.write_table(extra.cast(first.schema), source / "part-99999.parquet")

    assert run(stack, "c_2", conf)["state"] == "success"
    resent = sent_ids(stack, [b for b in batches_of(stack, partition) if b["id"] not in before])
    assert sorted(map(int, resent)) == sorted(changed_ids + new_ids)
    loaded = table(stack, partition, "review_id, text, response_text, dag_run_id")
    assert len(loaded) == rows + 100 and len({r["review_id"] for r in loaded}) == rows + 100
    assert all(r["response_text"] == "echo: " + r["text"][:200] for r in loaded), (
        "a row carries another prompt's answer"
    )
    assert {r["dag_run_id"] for r in loaded} == {"c_2"}
    split_log = "".join(p.read_text() for p in (stack.airflow_home / "logs").rglob("run_id=c_2/task_id=split/*.log"))
    assert "100 new, 50 changed, 0 unanswered before (sent again), 950 reused from the ledger" in split_log

    seen = {b["id"] for b in batches_of(stack, partition)}
    assert run(stack, "c_3", {**conf, "reuse_results": False})["state"] == "success"  # a deliberate full re-ask
    assert len(sent_ids(stack, [b for b in batches_of(stack, partition) if b["id"] not in seen])) == rows + 100


def test_d_two_runs_of_one_partition_at_once_share_one_batch_per_file(stack):
    partition, rows = "2026-11-13", PARTITIONS["2026-11-13"]
    conf = {"partition": partition, "max_requests_per_file": 250}
    stack.trigger(DAG_ID, "d_1", conf)
    stack.trigger(DAG_ID, "d_2", conf)
    for run_id in ("d_1", "d_2"):
        outcome = stack.wait_for_run(DAG_ID, run_id, timeout=420, progress=lambda message: None)
        assert outcome["state"] == "success", outcome["tasks"]
    created = batches_of(stack, partition)
    originals = [b for b in created if "attempt" not in b["metadata"]]
    assert len(originals) == rows // 250, [b["metadata"]["airflow_run_id"] for b in created]
    assert len({b["metadata"]["batchkit_key"] for b in created}) == len(created)
    assert len(sent_ids(stack, originals)) == rows
    loaded = table(stack, partition, "review_id")
    assert len(loaded) == rows and len({r["review_id"] for r in loaded}) == rows


def test_e_a_source_rewritten_after_the_split_never_pairs_answers_with_other_rows(stack):
    partition, rows = "2026-11-14", PARTITIONS["2026-11-14"]
    source = stack.data_dir / "reviews" / f"dt={partition}"
    originals = {p: pq.read_table(p) for p in sorted(source.glob("*.parquet"))}
    slow = ("--seconds-per-request", "0.02", "--validation-seconds", "1")
    with emulator_settings(stack, *slow):
        stack.trigger(DAG_ID, "e_1", {"partition": partition, "id_column": "", "max_requests_per_file": 300, **ECHO})
        wait_for_state(stack, "e_1", "batch.submit", "deferred")  # batches running
        for path, data in originals.items():  # compacted/rewritten: same files, rows in another order
            pq.write_table(data.take(pa.array(range(data.num_rows - 1, -1, -1))), path)
        outcome = stack.wait_for_run(DAG_ID, "e_1", timeout=420, progress=lambda message: None)
    assert outcome["state"] == "success", outcome["tasks"]
    loaded = table(stack, partition, "review_id, text, response_text, custom_id")
    assert len(loaded) == rows and len({r["review_id"] for r in loaded}) == rows
    assert all(r["response_text"] == "echo: " + r["text"][:200] for r in loaded)
    first_file = next(iter(originals.values()))
    assert {r["custom_id"]: r["review_id"] for r in loaded}["0-0"] == first_file.column("review_id")[0].as_py()


def test_f_anthropic_expiry_then_clear_of_the_run_sends_only_unanswered_requests(stack):
    partition, rows, per_file = "2026-11-15", PARTITIONS["2026-11-15"], 20
    conf = {"partition": partition, "max_requests_per_file": per_file, "max_attempts": 2, "max_error_rate": 0.05}
    before = {b.id for b in message_batches(stack)}
    expiring = (*EXPIRING[:4], "--seconds-per-request", "0.05")  # chunks of 4 requests: 20 stop halfway
    with emulator_settings(stack, *expiring):
        first = run(stack, "f_1", {**conf, **CLAUDE})
    assert first["state"] == "failed"  # too many unanswered requests: the load refused
    assert {t["task_id"]: t["state"] for t in first["tasks"]}["load"] == "failed"
    expired = [b for b in message_batches(stack) if b.id not in before]
    assert len(expired) == 2 * (rows // per_file)  # two attempts per file, each ending with expired requests
    assert all(b.processing_status == "ended" and b.request_counts.expired > 0 for b in expired)
    sent_first = [i for b in expired for i in message_batch_requests(stack, b.id)]
    answers = ledger_answers(stack, partition)
    answered = set(answers.filter(pc.equal(answers.column("status"), "ok")).column("custom_id").to_pylist())
    assert 0 < len(answered) < rows and len(answered) == sum(b.request_counts.succeeded for b in expired)
    assert table(stack, partition) == [], "a refused load must not touch the table"

    stack.clear(DAG_ID, "f_1")
    again = stack.wait_for_run(DAG_ID, "f_1", timeout=420, progress=lambda message: None)
    assert again["state"] == "success", again["tasks"]
    seen = before | {b.id for b in expired}
    new = [b for b in message_batches(stack) if b.id not in seen]
    resent = [i.split("_", 1)[1] for b in new for i in message_batch_requests(stack, b.id)]  # untagged: our ids
    assert not answered & set(resent), "a request answered before the clear was paid for again"
    assert sorted(resent, key=int) == sorted({str(i) for i in range(rows)} - answered, key=int)
    loaded = table(stack, partition, "review_id, status")
    assert len(loaded) == rows and len({r["review_id"] for r in loaded}) == rows
    assert {r["status"] for r in loaded} == {"ok"}
    print(f"(f) sent {len(sent_first)} requests in {len(expired)} message batches, {len(answered)} answered; "
          f"the clear sent {len(resent)} in {len(new)}")


def wait_for_state(stack: Stack, run_id: str, task_id: str, state: str, timeout: float = 180) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(t["task_id"] == task_id and t["state"] == state for t in stack.task_states(DAG_ID, run_id)):
            return
        time.sleep(0.5)
    raise AssertionError(f"{task_id} of {run_id} never reached {state}")
