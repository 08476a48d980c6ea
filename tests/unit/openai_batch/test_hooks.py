"""The hook's find-by-key and create-once against a real emulator (the idempotency the submit step relies on)."""

import time

import pytest

from openai_batch.hooks import OpenAIBatchHook
from openai_batch.statuses import METADATA_KEY
from tests.emulator_client import chat_line, client_for, submit_batch, upload


def test_find_batch_returns_the_newest_batch_with_the_key_and_none_for_another(conn, tmp_path):
    emu, since = conn(), time.time()
    first, other, second = (submit_batch(emu, tmp_path, 1, {METADATA_KEY: key}) for key in ("k1", "k2", "k1"))
    hook = OpenAIBatchHook(conn_id="openai_test")
    assert hook.find_batch("k1", since).id == second != first
    assert hook.find_batch("k2", since).id == other
    assert hook.find_batch("k3", since) is None


def test_a_create_that_timed_out_is_adopted_not_repeated(conn, tmp_path, monkeypatch):
    emu = conn("--create-delay-seconds", "3")
    client = client_for(emu)
    file_id = upload(client, tmp_path, [chat_line("a")])
    monkeypatch.setattr("openai_batch.hooks.CLIENT_DEFAULTS", {"max_retries": 0, "timeout": 1.0})
    batch = OpenAIBatchHook(conn_id="openai_test").create_batch_once(
        "key-1",
        input_file_id=file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={METADATA_KEY: "key-1"},
    )
    assert [b.id for b in client.batches.list()] == [batch.id]  # one batch: the timed-out create was adopted


def test_without_a_batch_the_last_transient_error_is_raised(conn, tmp_path, monkeypatch):
    import openai

    emu = conn("--create-error-rate", "1")
    file_id = upload(client_for(emu), tmp_path, [chat_line("a")])
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    with pytest.raises(openai.RateLimitError):
        OpenAIBatchHook(conn_id="openai_test").create_batch_once(
            "key-2", input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert list(client_for(emu).batches.list()) == []
