"""The notifier and the Airflow alert callbacks against real local receivers (HTTP for Slack and PagerDuty, SMTP).

The receivers are started in the test on free ports; what they record is what a Slack channel, a PagerDuty
service or a mailbox would have received.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shoplake.airflow import alerts
from shoplake.config import ConfigError, Settings, get_settings
from shoplake.monitoring.notify import Alert, notify, outbox_path, read_outbox


@dataclass
class Receivers:
    http_url: str
    smtp_port: int
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    mails: list[EmailMessage] = field(default_factory=list)
    http_status: int = 202


def _http_handler(rx: Receivers) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rx.posts.append((self.path, json.loads(body)))
            self.send_response(rx.http_status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    return Handler


def _smtp_handler(rx: Receivers) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        """Just enough SMTP (RFC 5321) for smtplib: EHLO/HELO, MAIL, RCPT, DATA, QUIT."""

        def reply(self, line: str) -> None:
            self.wfile.write(f"{line}\r\n".encode())

        def handle(self) -> None:
            self.reply("220 test-receiver ESMTP")
            while raw := self.rfile.readline():
                verb = raw.decode().strip().split(" ", 1)[0].upper()
                if verb == "EHLO":
                    self.reply("250 test-receiver")
                elif verb in ("HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 end with <CRLF>.<CRLF>")
                    lines: list[bytes] = []
                    while (line := self.rfile.readline()) not in (b".\r\n", b""):
                        lines.append(line[1:] if line.startswith(b"..") else line)
                    msg = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                    assert isinstance(msg, EmailMessage)
                    rx.mails.append(msg)
                    self.reply("250 queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("502 not implemented")

    return Handler


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    rx = Receivers(http_url="", smtp_port=0)
    http = HTTPServer(("127.0.0.1", 0), _http_handler(rx))
    smtp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _smtp_handler(rx))
    smtp.daemon_threads = True
    rx.http_url = f"http://127.0.0.1:{http.server_port}"
    rx.smtp_port = smtp.server_address[1]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (http, smtp)]
    for t in threads:
        t.start()
    yield rx
    for s in (http, smtp):
        s.shutdown()
        s.server_close()


def _env(rx: Receivers, home: Path, **extra: str) -> dict[str, str]:
    return {
        "SHOPLAKE_HOME": str(home),
        "ALERT_WEBHOOK_URL": f"{rx.http_url}/services/T0/B0/secret",
        "PAGERDUTY_ROUTING_KEY": "R0UTING-KEY",
        "PAGERDUTY_EVENTS_URL": f"{rx.http_url}/v2/enqueue",
        "ALERT_EMAILS": "oncall@example.com,data@example.com",
        "ALERT_SMTP_HOST": "127.0.0.1",
        "ALERT_SMTP_PORT": str(rx.smtp_port),
        "ALERT_SMTP_FROM": "airflow@shoplake.test",
        **extra,
    }


@pytest.fixture
def use_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point the process settings (read by the Airflow callbacks) at the given variables."""

    def apply(env: dict[str, str]) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


LOG_URL = "http://localhost:8082/dags/dbt_orchestration/runs/manual__2026-11-27/tasks/dbt_test?try_number=2"


def _task_context() -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="dbt_orchestration", run_id="manual__2026-11-27", task_id="dbt_test", try_number=2, log_url=LOG_URL
    )
    return {"ti": ti, "exception": RuntimeError("2 tests failed")}


@pytest.mark.unit
def test_failure_callback_reaches_slack_pagerduty_and_email_with_the_runs_details(
    receivers: Receivers, tmp_path: Path, use_env: Any
) -> None:
    use_env(_env(receivers, tmp_path))
    alerts.on_failure(_task_context())

    details = ("dag=dbt_orchestration", "run=manual__2026-11-27", "task=dbt_test", "try=2", LOG_URL, "2 tests failed")
    by_path = dict(receivers.posts)
    slack = by_path["/services/T0/B0/secret"]["text"]
    assert all(d in slack for d in details), slack

    event = by_path["/v2/enqueue"]
    assert event["routing_key"] == "R0UTING-KEY" and event["event_action"] == "trigger"
    assert event["dedup_key"] == "shoplake/dbt_orchestration/manual__2026-11-27/dbt_test"
    assert event["payload"]["severity"] == "critical" and event["payload"]["source"] == "airflow/dbt_orchestration"
    assert event["payload"]["custom_details"]["try_number"] == "2"
    assert event["links"] == [{"href": LOG_URL, "text": "Airflow task log"}]

    (mail,) = receivers.mails
    assert mail["To"] == "oncall@example.com, data@example.com" and mail["From"] == "airflow@shoplake.test"
    assert mail["Subject"] == "[shoplake] task failed: dbt_orchestration.dbt_test"
    body = mail.get_content()
    assert all(d in body for d in details), body
    assert not outbox_path(get_settings()).exists(), "a real send records nothing"


@pytest.mark.unit
def test_retry_is_a_warning_and_deadline_names_the_run(receivers: Receivers, tmp_path: Path, use_env: Any) -> None:
    use_env(_env(receivers, tmp_path, ALERT_EMAILS=""))
    alerts.on_retry(_task_context())
    # The triggerer's context of a missed deadline (airflow.models.deadline.Deadline.handle_miss).
    context = {
        "dag_run": {"dag_id": "ml_pipeline_orchestration", "dag_run_id": "scheduled__2026-11-22"},
        "deadline": {"id": "d1", "deadline_time": "2026-11-22T08:00:00+00:00"},
    }
    asyncio.run(alerts.deadline_missed(context=context, dag_id="ml_pipeline_orchestration"))

    events = [body for path, body in receivers.posts if path == "/v2/enqueue"]
    assert [e["payload"]["severity"] for e in events] == ["warning", "critical"]
    texts = [body["text"] for path, body in receivers.posts if path != "/v2/enqueue"]
    assert texts[0].startswith("[shoplake] task up for retry: dag=dbt_orchestration")
    assert texts[1] == (
        "[shoplake] deadline missed: dag=ml_pipeline_orchestration run=scheduled__2026-11-22 task=- try=- "
        "error=not finished by 2026-11-22T08:00:00+00:00"
    )
    assert receivers.mails == []  # no recipients: no e-mail channel


@pytest.mark.unit
def test_dry_run_records_what_would_be_sent_and_sends_nothing(
    receivers: Receivers, tmp_path: Path, use_env: Any
) -> None:
    use_env(_env(receivers, tmp_path, ALERT_DRY_RUN="true"))
    alerts.on_failure(_task_context())

    assert receivers.posts == [] and receivers.mails == []
    records = read_outbox(get_settings())
    assert [r["channel"] for r in records] == ["slack", "pagerduty", "email"]
    slack, pagerduty, mail = (r["payload"] for r in records)
    assert LOG_URL in slack["text"] and "try=2" in slack["text"]
    assert pagerduty["routing_key"] == "***" and pagerduty["dedup_key"].endswith("/dbt_test")
    assert mail["to"] == ["oncall@example.com", "data@example.com"] and LOG_URL in mail["body"]
    assert "secret" not in json.dumps(records), "webhook secrets never reach the outbox"
    alerts.on_failure(_task_context())
    assert len(read_outbox(get_settings())) == 6, "the outbox is append-only"


@pytest.mark.unit
def test_a_failing_channel_is_reported_not_raised_and_the_others_still_deliver(
    receivers: Receivers, tmp_path: Path
) -> None:
    receivers.http_status = 500
    settings = Settings.from_env(_env(receivers, tmp_path, PAGERDUTY_EVENTS_URL="http://127.0.0.1:9/v2/enqueue"))
    alert = Alert(kind="task failed", severity="critical", dag_id="d", run_id="r", task_id="t", try_number="1")
    assert notify(settings, alert) == {"slack": False, "pagerduty": False, "email": True}
    assert len(receivers.mails) == 1
    assert notify(Settings.from_env({"SHOPLAKE_HOME": str(tmp_path)}), alert) == {}  # nothing configured


@pytest.mark.unit
def test_callback_survives_a_task_instance_without_a_log_url(
    receivers: Receivers, tmp_path: Path, use_env: Any
) -> None:
    class NoBaseUrl:
        dag_id, run_id, task_id, try_number = "d", "r", "t", 1

        @property
        def log_url(self) -> str:
            raise RuntimeError("api.base_url is not configured")

    use_env(_env(receivers, tmp_path, ALERT_EMAILS=""))
    alerts.on_failure({"ti": NoBaseUrl()})
    assert dict(receivers.posts)["/services/T0/B0/secret"]["text"] == "[shoplake] task failed: dag=d run=r task=t try=1"


@pytest.mark.unit
def test_alert_settings_are_validated_and_secrets_masked() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"ALERT_DRY_RUN": "maybe", "ALERT_SMTP_PORT": "0", "PAGERDUTY_EVENTS_URL": "ftp://x"})
    assert all(n in str(err.value) for n in ("ALERT_DRY_RUN", "ALERT_SMTP_PORT", "PAGERDUTY_EVENTS_URL"))
    settings = Settings.from_env({"ALERT_DRY_RUN": "YES", "PAGERDUTY_ROUTING_KEY": "k", "ALERT_SMTP_PASSWORD": "p"})
    assert settings.alerts.dry_run is True
    assert settings.redacted()["PAGERDUTY_ROUTING_KEY"] == "***"
    assert settings.redacted()["ALERT_SMTP_PASSWORD"] == "***"
    with pytest.raises(ValueError, match="severity"):
        Alert(kind="x", severity="urgent", dag_id="d")
