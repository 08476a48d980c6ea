"""Run notifications through the real smtp and Slack providers to local receivers on 127.0.0.1: an aiosmtpd SMTP
server (with a login) and an HTTP server standing in for Slack's incoming webhook.

First the DAG's callbacks called as the dag-processor calls them, then a degraded and a failed run of the main
DAG on the real stack (api-server, scheduler, dag-processor, triggerer, emulator).
"""

import json
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from batchkit.devstack import REPO
from batchkit.emulator.launcher import free_port
from batchkit.sample import SENTIMENT_SCHEMA

from ..helpers import running_stack

DAG_ID = "openai_batch_inference"
FAST_RETRIES = {"OPENAI_BATCH_RETRY_DELAY_SECONDS": "5"}  # a task start that times out on a busy machine
SMTP_PASSWORD, SLACK_TOKEN = "smtp-pass-9f3c1e", "T000/B000/slack-token-7d2a"


class Receivers:
    """The mails and Slack posts received so far."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], str, str]] = []  # recipients, subject, plain text of the body
        self.posts: list[tuple[str, str]] = []  # path, body

    def env(self, smtp_port: int, slack_port: int) -> dict[str, str]:
        """Connections and settings pointing the DAG's notifications here."""
        smtp = {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": smtp_port,
            "login": "airflow",
            "password": SMTP_PASSWORD,
            "extra": {"from_email": "airflow@example.com", "disable_tls": True, "disable_ssl": True, "retry_limit": 0},
        }
        slack = {
            "conn_type": "slackwebhook",
            "host": f"http://127.0.0.1:{slack_port}/services",
            "password": SLACK_TOKEN,
        }
        return {
            "AIRFLOW_CONN_SMTP_NOTIFY": json.dumps(smtp),
            "AIRFLOW_CONN_SLACK_NOTIFY": json.dumps(slack),
            "OPENAI_BATCH_NOTIFY_SMTP_CONN_ID": "smtp_notify",
            "OPENAI_BATCH_NOTIFY_EMAIL_TO": "ops@example.com,data@example.com",
            "OPENAI_BATCH_NOTIFY_SLACK_CONN_ID": "slack_notify",
            "OPENAI_BATCH_DEGRADED_ERROR_RATE": "0.02",
        }

    def about(self, run_id: str) -> tuple[str, str]:
        """The one mail and the one Slack text about ``run_id``, each checked to carry no secret."""
        mails = [m for m in self.mails if run_id in m[1]]
        posts = [json.loads(body)["text"] for path, body in self.posts if run_id in body]
        assert len(mails) == 1 and len(posts) == 1, (self.mails, self.posts)
        recipients, subject, body = mails[0]
        assert sorted(recipients) == ["data@example.com", "ops@example.com"]
        for text in (subject, body, posts[0]):
            assert SMTP_PASSWORD not in text and SLACK_TOKEN not in text and "slack-token" not in text
        return f"{subject}\n{body}", posts[0]


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[Receivers, dict[str, str]]]:
    received = Receivers()

    class Mailbox:
        async def handle_DATA(self, server, session, envelope):
            mail = message_from_bytes(envelope.original_content, policy=policy.default)
            body = mail.get_body(("html", "plain")).get_content()
            received.mails.append((list(envelope.rcpt_tos), str(mail["Subject"]), body))
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"airflow", SMTP_PASSWORD.encode()))

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.posts.append((self.path, self.rfile.read(int(self.headers["Content-Length"])).decode()))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    smtp = Controller(
        Mailbox(), hostname="127.0.0.1", port=free_port(), authenticator=authenticate, auth_require_tls=False
    )
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield received, received.env(smtp.port, http.server_address[1])
    finally:
        http.shutdown()
        smtp.stop()


def test_the_dag_callbacks_send_a_failure_by_mail_and_slack(receivers, monkeypatch):
    """The DAG file parsed with the settings, its failure callback called as the dag-processor calls it: with the
    context of the failed task instance."""
    from airflow.dag_processing.dagbag import DagBag

    from openai_batch.notify import ERROR_KEY, record_error

    received, env = receivers
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    dag = DagBag(dag_folder=str(REPO / "dags" / f"{DAG_ID}.py")).dags[DAG_ID]
    assert dag.get_task("split").on_failure_callback == [record_error]
    load = {"partition": "2026-11-24", "input_rows": 500, "merged": 500, "results_ok": 300, "results_error": 200}
    xcoms = {("load", "return_value"): load, ("load", ERROR_KEY): "200 of 500 rows (40.0%) ended in error"}

    def xcom_pull(*, task_ids, key, map_indexes):
        return xcoms.get((task_ids, key))

    ti = SimpleNamespace(task_id="load", map_index=-1, xcom_pull=xcom_pull)
    context = {"dag": dag, "run_id": "cb_1", "ti": ti, "params": {}, "reason": "task_failure"}
    dag.on_failure_callback(context)

    mail, slack = received.about("cb_1")
    for text in (mail, slack):
        assert f"[failed] {DAG_ID} run cb_1 (partition 2026-11-24)" in text
        assert "Failed task: load" in text and "ended in error" in text and "in error: 200" in text
        assert f"/dags/{DAG_ID}/runs/cb_1" in text
    assert received.posts[-1][0] == f"/services/{SLACK_TOKEN}"  # the token only in the webhook's path


def test_a_degraded_and_a_failed_run_are_reported(receivers, tmp_path_factory):
    """One run of 300 rows with 30% invalid structured answers (allowed by the Param, degraded above 2%) and one
    with an unknown model (the split fails), at the same time on the real stack."""
    received, env = receivers
    args = ("--seconds-per-request", "0.002", "--validation-seconds", "1", "--invalid-output-rate", "0.3")
    root = tmp_path_factory.mktemp("stack")
    with running_stack(
        root, {"2026-11-24": 300}, DAG_ID, poll_seconds=2, emulator_args=args, extra_env={**env, **FAST_RETRIES}
    ) as stack:
        conf = {"partition": "2026-11-24", "output_schema": SENTIMENT_SCHEMA, "max_invalid_output_rate": 0.6}
        stack.trigger(DAG_ID, "notify_degraded", conf)
        stack.trigger(DAG_ID, "notify_failed", {"partition": "2026-11-24", "model": "gpt-imaginary"})
        for run_id, state in (("notify_degraded", "success"), ("notify_failed", "failed")):
            run = stack.wait_for_run(DAG_ID, run_id, timeout=300, progress=lambda message: None)
            assert run["state"] == state, run["tasks"]
        deadline = time.monotonic() + 60  # the dag-processor runs the callbacks a little after the run ends
        while time.monotonic() < deadline and (len(received.mails) < 3 or len(received.posts) < 3):
            time.sleep(1)

    mail, slack = received.about("notify_degraded")
    for text in (mail, slack):
        assert f"[degraded] {DAG_ID} run notify_degraded (partition 2026-11-24)" in text
        assert "got an invalid output, over 2.0%" in text
        assert "input rows: 300" in text and "rows merged: 300" in text and "table: review_sentiment" in text
        assert f"{stack.api_url}/dags/{DAG_ID}/runs/notify_degraded" in text
    mail, slack = received.about("notify_failed")
    for text in (mail, slack):
        assert f"[failed] {DAG_ID} run notify_failed (partition 2026-11-24)" in text
        assert "Failed task: split" in text and "model 'gpt-imaginary' does not exist" in text
        assert "No load numbers" in text
