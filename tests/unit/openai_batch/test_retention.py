"""Retention at the vendor (``openai_batch.retention``): lifetimes that could lose answers are refused, every vendor
gets a lifetime in its own range, and against a real emulator a recorded batch's files are deleted (or kept), a
retry or clear after the deletion reads the ledger and downloads nothing, and a failed deletion is only a warning."""

import json
import logging
from datetime import timedelta
from types import SimpleNamespace

import openai
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.emulator.launcher import free_port
from batchkit.split.splitter import SplitConfig, split
from openai_batch.context import TaskRun
from openai_batch.retention import Lifetimes, forget
from openai_batch.settings import PipelineSettings
from openai_batch.staging import RunStaging
from openai_batch.vendors import for_connection, vendor_class
from openai_batch.vendors.openai import OpenAIVendor
from tests.emulator_client import client_for, wait
from tests.helpers import split_descriptors

ENV = ("OPENAI_BATCH_FILE_EXPIRY_DAYS", "OPENAI_BATCH_OUTPUT_EXPIRY_DAYS", "OPENAI_BATCH_KEEP_VENDOR_FILES")
WEEK = 7 * 86400


class StateStore(dict):
    def set(self, key, value, **_):
        self[key] = value


def test_the_settings_default_to_a_week_and_deletion_and_read_the_environment(monkeypatch, tmp_path):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    assert PipelineSettings.from_env(data_root=str(tmp_path)).lifetimes == Lifetimes(
        timedelta(days=7), timedelta(days=7), keep=False
    )
    monkeypatch.setenv("OPENAI_BATCH_FILE_EXPIRY_DAYS", "none")  # the vendor's own default
    monkeypatch.setenv("OPENAI_BATCH_OUTPUT_EXPIRY_DAYS", "2")
    monkeypatch.setenv("OPENAI_BATCH_KEEP_VENDOR_FILES", "true")
    assert PipelineSettings.from_env(data_root=str(tmp_path)).lifetimes == Lifetimes(None, timedelta(days=2), True)


@pytest.mark.parametrize(
    ("days", "refusal"),
    [
        ("1", r"is 1 days: shorter than a batch's completion window \(24 h\) plus the collect grace \(1 h\)"),
        ("31", "is 31 days: the vendors accept at most 30 days"),
    ],
)
def test_a_lifetime_that_could_lose_answers_or_that_vendors_refuse_is_refused(monkeypatch, tmp_path, days, refusal):
    from openai_batch.operators import CollectResultsOperator, SubmitBatchOperator

    monkeypatch.setenv("OPENAI_BATCH_OUTPUT_EXPIRY_DAYS", days)
    with pytest.raises(ValueError, match=f"OPENAI_BATCH_OUTPUT_EXPIRY_DAYS \\(output_expiry\\) {refusal}"):
        PipelineSettings.from_env(data_root=str(tmp_path))
    lifetime = timedelta(days=float(days))
    with pytest.raises(ValueError, match=refusal):
        PipelineSettings(staging_root=str(tmp_path), file_expiry=lifetime)
    with pytest.raises(ValueError, match=f"input files' lifetime \\(expires_after\\) {refusal}"):
        SubmitBatchOperator(task_id="s", batch_file={}, staging_root="/s", expires_after=lifetime)
    with pytest.raises(ValueError, match=refusal):  # the API's own form, as the operator took it before
        CollectResultsOperator(
            task_id="c", batch_file={}, batch_id="b", staging_root="/s",
            output_expires_after={"anchor": "created_at", "seconds": int(lifetime.total_seconds())},
        )  # fmt: skip
    assert PipelineSettings(staging_root=str(tmp_path), file_expiry=timedelta(hours=25)).file_expiry.days == 1


def test_each_vendor_takes_a_lifetime_in_its_own_range():
    openai_, azure, anthropic = (vendor_class(name)("c", object(), {}) for name in ("openai", "azure", "anthropic"))
    week, month = timedelta(days=7), timedelta(days=30)
    assert openai_.expiry(week) == {"anchor": "created_at", "seconds": WEEK}
    assert azure.expiry(week) == {"anchor": "created_at", "seconds": 14 * 86400}  # Azure keeps 14 to 30 days
    assert azure.expiry(month)["seconds"] == openai_.expiry(month)["seconds"] == 30 * 86400
    assert anthropic.expiry(week) is None and openai_.expiry(None) is None  # no files / the vendor's default


def staged_file(tmp_path, rows: int = 20) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": list(range(rows)), "text": [f"q {i}" for i in range(rows)]}), tmp_path / "in.parquet")
    config = SplitConfig(model="gpt-4o-mini", prompt_column="text", id_column="id")
    return split_descriptors(tmp_path / "split", split(str(tmp_path / "in.parquet"), tmp_path / "split", config))[0]


def run_context(run_id: str = "r") -> dict:
    ti = SimpleNamespace(dag_id="d", run_id=run_id, task_id="batch.submit", map_index=0)
    return {"ti": ti, "run_id": run_id, "dag": SimpleNamespace(dag_id="d"), "params": {"partition": "p"},
            "task_state_store": StateStore()}  # fmt: skip


@pytest.fixture
def pipeline_conn(emulator, monkeypatch):
    emu = emulator("--seconds-per-request", "0.01", "--validation-seconds", "0", "--line-failure-rate", "0.3")
    monkeypatch.setenv("AIRFLOW_CONN_OPENAI_R", json.dumps({"conn_type": "openai", "password": "x", "host": emu.base_url}))
    downloads = []
    download = OpenAIVendor.download
    monkeypatch.setattr(OpenAIVendor, "download", lambda self, batch, *a: downloads.append(batch.id) or download(self, batch, *a))
    return client_for(emu), downloads


def submitted(tmp_path, client, keep: bool = False):
    from airflow.sdk.exceptions import TaskDeferred

    from openai_batch.operators import SubmitBatchOperator

    descriptor, staging = staged_file(tmp_path), str(tmp_path / "staging")
    common = {"batch_file": descriptor, "staging_root": staging, "conn_id": "openai_r", "max_attempts": 1}
    submit = SubmitBatchOperator(task_id="submit", keep_vendor_files=keep, **common)
    context = run_context()
    with pytest.raises(TaskDeferred) as waiting:
        submit.execute(context)
    batch = wait(client, waiting.value.trigger.batch_id)
    return submit, context, batch, common


def test_a_recorded_batchs_files_are_deleted_and_a_clear_reads_the_ledger_only(pipeline_conn, tmp_path):
    from openai_batch.operators import CollectResultsOperator, SubmitBatchOperator

    client, downloads = pipeline_conn
    submit, context, batch, common = submitted(tmp_path, client)
    files = [batch.input_file_id, batch.output_file_id, batch.error_file_id]
    assert all(files), "the emulator's line failures make an error file too"
    uploaded, output = client.files.retrieve(files[0]), client.files.retrieve(files[1])
    assert uploaded.expires_at - uploaded.created_at == WEEK  # expires_after on upload
    assert output.expires_at - output.created_at == WEEK  # output_expires_after on the batch

    assert submit.follow(context) == batch.id
    assert downloads == [batch.id]
    for file_id in files:  # gone once the ledger has the answers
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(file_id)
    assert not {f.id for f in client.files.list()} & set(files)
    assert client.batches.retrieve(batch.id).status == "completed"  # the batch object itself stays

    collect = CollectResultsOperator(task_id="collect", batch_id=batch.id, **common)
    outcome = collect.execute(run_context())  # a clear of collect
    assert (outcome["rows"], outcome["batch_ids"]) == (20, [batch.id]) and 0 < outcome["ok"] < 20
    again = SubmitBatchOperator(task_id="submit", **common)
    assert again.execute(run_context("cleared")) == batch.id  # a clear of submit (no saved id): the claim's batch
    assert downloads == [batch.id], "nothing is downloaded again"
    assert [b.id for b in client.batches.list()] == [batch.id], "nothing is sent again"


def test_kept_files_stay_and_results_lost_before_recording_stop_the_run_naming_the_claim(pipeline_conn, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    client, downloads = pipeline_conn
    submit, context, batch, _ = submitted(tmp_path / "kept", client, keep=True)
    submit.follow(context)
    assert all(client.files.retrieve(f).id for f in (batch.input_file_id, batch.output_file_id, batch.error_file_id))

    staging = RunStaging(str(tmp_path / "kept" / "staging"), TaskRun.of(context))
    client.files.delete(batch.output_file_id)  # as another run's collect would, after recording
    vendor = for_connection("openai_r")
    submit._record(vendor, staging, staging.ledger(), batch, 1, "k")  # an overlapping run's record: nothing to do
    assert downloads == [batch.id, batch.id]  # it tried, found the file gone and the answers in the ledger

    lost, context, batch, _ = submitted(tmp_path / "lost", client, keep=True)
    client.files.delete(batch.output_file_id)  # expired, or deleted by hand, before collect recorded it
    with pytest.raises(AirflowFailException, match=f"the results of batch {batch.id} are gone at OpenAI") as stopped:
        lost.follow(context)
    key = lost.attempt_key(TaskRun.of(context), 1)
    assert f"delete its claim {tmp_path}/lost/staging/d/p/_ledger/batches/{key}.json" in str(stopped.value)


def test_a_deletion_the_vendor_refuses_is_a_warning(monkeypatch, caplog):
    from openai.types import Batch

    host = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: every deletion fails to connect
    monkeypatch.setenv("AIRFLOW_CONN_OPENAI_DOWN", json.dumps({"conn_type": "openai", "password": "x", "host": host}))
    vendor = vendor_class("openai")("openai_down")
    batch = Batch.model_validate(
        {"id": "batch_1", "object": "batch", "endpoint": "/v1/chat/completions", "input_file_id": "file-in",
         "output_file_id": "file-out", "completion_window": "24h", "status": "completed", "created_at": 1}
    )  # fmt: skip
    log = logging.getLogger("retention-test")
    with caplog.at_level(logging.WARNING, logger="retention-test"):
        forget(vendor, batch, log)  # returns: the answers are recorded, nothing fails
    warned = [r.getMessage() for r in caplog.records]
    assert [m.split(" (")[0] for m in warned] == ["could not delete file file-in at OpenAI", "could not delete file file-out at OpenAI"]
    assert all("APIConnectionError" in m and "it expires on its own" in m for m in warned)
