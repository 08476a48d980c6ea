"""Each adapter against a real emulator process speaking its vendor's API, through the vendor's own SDK: submit a
small file, poll (worker and triggerer side), download, find a lost create (Anthropic: without metadata), and forget
what a recorded batch left at the vendor (files of a lifetime in the vendor's range; Anthropic: the batch)."""

import asyncio
import json
import logging
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from batchkit.sentiment import SENTIMENT_SCHEMA
from batchkit.split.requests import RequestShape
from openai_batch import triggers
from openai_batch.vendors import for_connection
from openai_batch.vendors.base import CreateRefused, Gone, ModelMissing

KEY = "5eed1234" + "0" * 24
IDS = ["r-1", "r_2", "https://shop.example/r/3?x=1"]  # the last breaks Anthropic's custom_id rule


@pytest.fixture
def vendor_conn(emulator, monkeypatch):
    """Start an emulator and point connection ``<vendor>_test`` at its API for that vendor."""

    def make(vendor: str, *args: str):
        emu = emulator("--seconds-per-request", "0.02", *args)
        conn = {
            "azure": {"conn_type": "openai", "password": "k", "host": f"{emu.url}/openai/v1", "extra": {"vendor": "azure"}},
            "anthropic": {"conn_type": "anthropic", "password": "k", "host": emu.url},
        }[vendor]
        monkeypatch.setenv(f"AIRFLOW_CONN_{vendor.upper()}_TEST", json.dumps(conn))
        return for_connection(f"{vendor}_test")

    return make


def batch_file(tmp_path: Path, model: str, schema=None) -> Path:
    shape = RequestShape.build("/v1/chat/completions", model, "Be terse.", {"max_tokens": 50}, schema)
    path = tmp_path / "batch-00000.jsonl"
    path.write_bytes(b"".join(shape.line(custom_id, f"review {i}") for i, custom_id in enumerate(IDS)))
    return path


def until_ended(vendor, batch_id: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = vendor.get_batch(batch_id)
        if batch.status in ("completed", "expired", "cancelled", "failed"):
            return batch
        time.sleep(0.1)
    raise AssertionError(f"{batch_id} did not end")


def results(vendor, batch, tmp_path: Path, path: Path, key: str = KEY) -> dict[str, dict]:
    lines = {}
    for _, written in vendor.download(batch, tmp_path / "dl", "attempt-1.jsonl", str(path), key):
        lines |= {row["custom_id"]: row for row in map(orjson.loads, written.read_bytes().splitlines())}
    return lines


def poll_on_the_triggerer(conn_id: str, batch_id: str, monkeypatch) -> dict:
    monkeypatch.setattr(triggers, "SETTLE_SECONDS", 0.0)
    trigger = triggers.OpenAIBatchStatusTrigger(batch_id, conn_id, poll_interval=0.1, deadline=time.time() + 60)

    async def first():
        events = trigger.run()
        try:
            return (await asyncio.wait_for(anext(events), 60)).payload
        finally:
            await events.aclose()

    return asyncio.run(first())


def test_azure_runs_a_batch_on_the_v1_paths_with_its_limits(vendor_conn, tmp_path, monkeypatch):
    vendor = vendor_conn("azure")
    assert (vendor.name, vendor.limits.max_requests, vendor.limits.expires) == ("azure", 100_000, False)
    path, since = batch_file(tmp_path, "my-gpt-4o-mini-batch"), time.time()  # model: the deployment name
    batch = vendor.submit(KEY, str(path), requests=3, endpoint="/v1/chat/completions", completion_window="24h",
                          metadata={"batchkit_key": KEY})
    assert vendor.find_batch(KEY, since).id == batch.id  # metadata: found by its key
    event = poll_on_the_triggerer("azure_test", batch.id, monkeypatch)
    assert event["status"] == "completed" and event["request_counts"]["total"] == 3
    ended = until_ended(vendor, batch.id)
    assert vendor.deadline(ended.created_at, None) == ended.created_at + 168 * 3600  # no expiry: a week's backstop
    lines = results(vendor, ended, tmp_path, path)
    assert set(lines) == set(IDS) and all(line["response"]["status_code"] == 200 for line in lines.values())
    assert vendor.batch_url(batch.id).endswith(f"/openai/v1/batches/{batch.id}")


def test_anthropic_runs_a_batch_inline_and_maps_ids_and_answers_back(vendor_conn, tmp_path, monkeypatch):
    vendor = vendor_conn("anthropic")
    vendor.check_model("claude-sonnet-4-5")
    with pytest.raises(ModelMissing):
        vendor.check_model("gpt-4o")  # Anthropic's Models API (the emulator's claude-* models)
    path = batch_file(tmp_path, "claude-sonnet-4-5", SENTIMENT_SCHEMA)
    batch = vendor.submit(KEY, str(path), requests=3, endpoint="/v1/chat/completions")
    assert batch.status == "in_progress" and batch.request_counts.total == 3 and not batch.metadata
    event = poll_on_the_triggerer("anthropic_test", batch.id, monkeypatch)
    assert event["status"] == "completed" and event["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    ended = until_ended(vendor, batch.id)
    lines = results(vendor, ended, tmp_path, path)
    assert set(lines) == set(IDS)  # our ids, the hashed one mapped back through the batch file
    answer = orjson.loads(lines[IDS[2]]["response"]["body"]["choices"][0]["message"]["content"])
    assert set(answer) == {"label", "confidence"}  # structured output, as the schema asks
    with pytest.raises(Exception, match="adopted by the lost-create lookup by mistake"):
        results(vendor, ended, tmp_path, path, key="ffffffff" + KEY[8:])


def test_anthropic_finds_a_lost_create_without_metadata(vendor_conn, tmp_path):
    vendor = vendor_conn("anthropic", "--create-delay-seconds", "3")
    vendor.client = vendor.hook.get_conn().with_options(max_retries=0, timeout=1.0)  # the create's answer is lost
    path, since = batch_file(tmp_path, "claude-haiku-4-5"), time.time()
    other = "a11ce000" + KEY[8:]
    batch = vendor.submit(KEY, str(path), requests=3, endpoint="/v1/chat/completions", owned=set)
    assert [b.id for b in vendor.iter_batches_since(int(since) - 60)] == [batch.id]  # adopted, not created twice
    assert vendor.find_batch(KEY, since, requests=3, owned=lambda: {batch.id}) is None  # another claim's
    assert vendor.find_batch(KEY, since, requests=4) is None  # another size
    until_ended(vendor, batch.id)
    assert vendor.find_batch(KEY, since, requests=3).id == batch.id  # ended: confirmed by its results' tag
    assert vendor.find_batch(other, since, requests=3) is None  # another key's tag: not ours


def test_anthropic_refusals_wait_like_openais(vendor_conn, tmp_path, monkeypatch):
    vendor = vendor_conn("anthropic", "--create-error-rate", "1")
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    with pytest.raises(CreateRefused):
        vendor.submit(KEY, str(batch_file(tmp_path, "claude-haiku-4-5")), requests=3, endpoint="/v1/chat/completions")


def test_anthropic_adopts_a_running_batch_only_when_nothing_else_could_be_it(vendor_conn, tmp_path):
    from openai_batch.vendors.anthropic import LookupAmbiguous

    vendor = vendor_conn("anthropic", "--seconds-per-request", "2")  # the batches stay running
    path, since = batch_file(tmp_path, "claude-haiku-4-5"), time.time()
    batch = vendor.submit(KEY, str(path), requests=3, endpoint="/v1/chat/completions")
    with pytest.raises(LookupAmbiguous, match="another claim of the partition is still creating"):
        vendor.find_batch(KEY, since, requests=3, pending=lambda: True)  # it could be that claim's
    assert vendor.find_batch(KEY, since, requests=3, pending=lambda: False).id == batch.id  # the only candidate
    vendor.submit("b0b0b0b0" + KEY[8:], str(path), requests=3, endpoint="/v1/chat/completions")
    with pytest.raises(LookupAmbiguous, match="2 running batches"):
        vendor.find_batch(KEY, since, requests=3, pending=lambda: False)


def test_anthropic_expired_and_cancelled_requests_come_back_as_openais(vendor_conn, tmp_path):
    vendor = vendor_conn("anthropic", "--expire-rate", "1", "--seconds-per-request", "0.3", "--completion-window-seconds", "3")
    path = batch_file(tmp_path, "claude-haiku-4-5")
    expired = until_ended(vendor, vendor.submit(KEY, str(path), requests=3, endpoint="/v1/chat/completions").id)
    lines = results(vendor, expired, tmp_path, path)
    codes = {(line.get("error") or {}).get("code") for line in lines.values()}
    assert expired.status == "expired" and "batch_expired" in codes  # sent again by the next attempt
    running = vendor.submit("c0ffee00" + KEY[8:], str(path), requests=3, endpoint="/v1/chat/completions")
    assert vendor.cancel_batch(running.id).status in ("cancelling", "cancelled")
    cancelled = until_ended(vendor, running.id)
    assert cancelled.status == "cancelled" and cancelled.cancelling_at


def test_azure_files_live_14_days_at_least_and_are_forgotten_once_recorded(vendor_conn, tmp_path, caplog):
    from openai_batch.retention import Lifetimes

    vendor = vendor_conn("azure", "--line-failure-rate", "0.5")
    path = batch_file(tmp_path, "gpt-4o-mini")
    lifetimes = Lifetimes(timedelta(days=7), timedelta(days=20))  # Azure's range is 14 to 30 days: 7 becomes 14
    batch = vendor.submit(KEY, str(path), requests=3, endpoint="/v1/chat/completions", completion_window="24h",
                          lifetimes=lifetimes)
    ended = until_ended(vendor, batch.id)
    files = vendor.hook.conn.files
    lived = {f: files.retrieve(f) for f in (ended.input_file_id, ended.output_file_id, ended.error_file_id) if f}
    assert len(lived) == 3, "a line failed: an error file too"
    assert [f.expires_at - f.created_at for f in lived.values()] == [14 * 86400, 20 * 86400, 20 * 86400]
    assert set(results(vendor, ended, tmp_path, path)) == set(IDS)

    log = logging.getLogger("forget")
    with caplog.at_level(logging.WARNING):
        assert vendor.forget(ended, log) == [f"file {f}" for f in lived]
        assert vendor.forget(ended, log) == [f"file {f}" for f in lived]  # already gone (404): fine, no warning
    assert not [r for r in caplog.records if r.name == "forget"]
    assert not {f.id for f in files.list()} & set(lived)
    with pytest.raises(Gone):
        vendor.download(ended, tmp_path / "again", "attempt-1.jsonl", str(path), KEY)
    assert vendor.get_batch(batch.id).status == "completed"  # the batch itself stays


def test_anthropic_forgets_an_ended_batch_and_its_results(vendor_conn, tmp_path, monkeypatch, caplog):
    vendor = vendor_conn("anthropic")
    path = batch_file(tmp_path, "claude-haiku-4-5")
    batch = vendor.submit(KEY, str(path), requests=3, endpoint="/v1/chat/completions", lifetimes=object())
    ended = until_ended(vendor, batch.id)
    assert set(results(vendor, ended, tmp_path, path)) == set(IDS)
    with caplog.at_level(logging.WARNING):
        assert vendor.forget(ended, logging.getLogger("forget")) == [f"message batch {batch.id}"]
        assert vendor.forget(ended, logging.getLogger("forget")) == [f"message batch {batch.id}"]  # 404: gone
    assert not [r for r in caplog.records if r.name == "forget"]
    with pytest.raises(Gone):
        vendor.get_batch(batch.id)
    with pytest.raises(Gone):
        results(vendor, ended, tmp_path / "again", path)
    assert vendor.find_batch(KEY, time.time() - 60, requests=3) is None  # no lost create to adopt
    event = poll_on_the_triggerer("anthropic_test", batch.id, monkeypatch)
    assert event["status"] == "gone"  # the waiting task reads the ledger instead


def test_anthropic_never_creates_again_while_a_lost_create_cannot_be_told_apart(vendor_conn, tmp_path, monkeypatch):
    from openai_batch.vendors import base
    from openai_batch.vendors.anthropic import LookupAmbiguous

    vendor = vendor_conn("anthropic", "--create-delay-seconds", "2", "--seconds-per-request", "2")  # stays running
    vendor.client = vendor.hook.get_conn().with_options(max_retries=0, timeout=1.0)  # every create's answer is lost
    path, since = batch_file(tmp_path, "claude-haiku-4-5"), time.time()
    creating = iter([True, True, False])  # another claim is creating its batch, then has recorded it
    batch = vendor.submit(KEY, str(path), requests=3, endpoint="/v1/chat/completions", owned=set,
                          pending=lambda: next(creating))
    assert [b.id for b in vendor.iter_batches_since(int(since) - 60)] == [batch.id]  # looked again, adopted
    monkeypatch.setattr(base, "LOOKUP_WAIT_SECONDS", 1.0)
    with pytest.raises(LookupAmbiguous):  # never decided: the try fails, nothing created twice
        vendor.submit("b0b0b0b0" + KEY[8:], str(path), requests=3, endpoint="/v1/chat/completions", owned=set,
                      pending=lambda: True)
    assert len(list(vendor.iter_batches_since(int(since) - 60))) == 2
