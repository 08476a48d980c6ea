"""Local receivers for the DAG's notifications: an aiosmtpd SMTP server (with a login) and an HTTP server standing
in for Slack's incoming webhook, both on 127.0.0.1."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from batchkit.emulator.launcher import free_port

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


@contextmanager
def notification_receivers() -> Iterator[tuple[Receivers, dict[str, str]]]:
    """A local SMTP server (with a login) and a Slack webhook stand-in, and the settings pointing the DAG there."""
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
