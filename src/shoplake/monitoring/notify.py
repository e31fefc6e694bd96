"""One notifier for every alert of the platform: Slack webhook, PagerDuty Events API v2 and e-mail.

The Airflow callbacks (:mod:`shoplake.airflow.alerts`) and anything else that needs to wake someone up build
an :class:`Alert` and hand it to :func:`notify`. Which channels fire is decided by the settings alone
(``ALERT_WEBHOOK_URL``, ``PAGERDUTY_ROUTING_KEY``, ``ALERT_EMAILS`` + ``ALERT_SMTP_*``), so code never
branches on the environment. ``ALERT_DRY_RUN=true`` sends nothing and appends what *would* have been sent
(channel, destination, exact payload) to ``$SHOPLAKE_HOME/alerts/outbox.jsonl``: a way to try the
configuration on a laptop and to audit alerts.

A failing channel is logged and reported as ``False``, never raised: an alerting outage must not turn a
task retry into a failure, nor stop the other channels.
"""

from __future__ import annotations

import json
import logging
import smtplib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from shoplake.config import Settings

log = logging.getLogger(__name__)

SEVERITIES: Final = ("critical", "error", "warning", "info")
TIMEOUT_SECONDS: Final = 10.0


@dataclass(frozen=True)
class Alert:
    """What happened, and where: the fields an on-call engineer needs before opening the UI."""

    kind: str  # e.g. "task failed", "task up for retry", "deadline missed"
    severity: str
    dag_id: str
    run_id: str = "-"
    task_id: str = "-"
    try_number: str = "-"
    log_url: str = ""
    error: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r}: expected one of {SEVERITIES}")

    @property
    def text(self) -> str:
        """One line, the same on every channel (Slack text, PagerDuty summary, e-mail subject + body)."""
        parts = [f"[shoplake] {self.kind}: dag={self.dag_id}"]
        parts += [f"{k}={v}" for k, v in (("run", self.run_id), ("task", self.task_id), ("try", self.try_number))]
        if self.error:
            parts.append(f"error={self.error}")
        if self.log_url:
            parts.append(f"log={self.log_url}")
        return " ".join(parts)

    @property
    def dedup_key(self) -> str:
        """Retries of one task in one run update the same PagerDuty incident instead of opening new ones."""
        return f"shoplake/{self.dag_id}/{self.run_id}/{self.task_id}"


class Channel(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def destination(self) -> str: ...

    def payload(self, alert: Alert) -> dict[str, Any]: ...

    def send(self, payload: dict[str, Any]) -> None: ...


def _post_json(url: str, payload: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
    import requests

    resp = requests.post(url, json=payload, headers=dict(headers or {}), timeout=TIMEOUT_SECONDS)
    if resp.status_code >= 300:
        raise RuntimeError(f"{url} answered {resp.status_code}: {resp.text[:200]}")


@dataclass(frozen=True)
class SlackChannel:
    """Slack incoming webhook (or any endpoint that accepts ``{"text": ...}``)."""

    url: str
    name: str = "slack"

    @property
    def destination(self) -> str:
        parts = urlsplit(self.url)  # a Slack webhook's path is its secret: show only where it goes
        return f"{parts.scheme}://{parts.netloc}/..."

    def payload(self, alert: Alert) -> dict[str, Any]:
        return {"text": alert.text}

    def send(self, payload: dict[str, Any]) -> None:
        _post_json(self.url, payload)


@dataclass(frozen=True)
class PagerDutyChannel:
    """PagerDuty Events API v2 ``trigger`` event; ``custom_details`` carries every field of the alert."""

    routing_key: str
    events_url: str
    name: str = "pagerduty"

    @property
    def destination(self) -> str:
        return self.events_url

    def payload(self, alert: Alert) -> dict[str, Any]:
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": alert.dedup_key,
            "payload": {
                "summary": alert.text[:1024],  # the API's limit
                "source": f"airflow/{alert.dag_id}",
                "severity": alert.severity,
                "component": alert.task_id,
                "group": alert.dag_id,
                "class": alert.kind,
                "custom_details": asdict(alert),
            },
        }
        if alert.log_url:
            body["links"] = [{"href": alert.log_url, "text": "Airflow task log"}]
        return body

    def send(self, payload: dict[str, Any]) -> None:
        _post_json(self.events_url, payload)

    def recorded(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload as written to the dry-run outbox: the routing key is a secret."""
        return {**payload, "routing_key": "***"}


@dataclass(frozen=True)
class EmailChannel:
    """Plain-text e-mail through an SMTP relay (STARTTLS + login when a user is configured)."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str = ""
    password: str = ""
    name: str = "email"

    @property
    def destination(self) -> str:
        return f"smtp://{self.host}:{self.port} -> {', '.join(self.recipients)}"

    def payload(self, alert: Alert) -> dict[str, Any]:
        lines = [f"{k}: {v}" for k, v in asdict(alert).items() if v]
        return {
            "from": self.sender,
            "to": list(self.recipients),
            "subject": f"[shoplake] {alert.kind}: {alert.dag_id}.{alert.task_id}",
            "body": alert.text + "\n\n" + "\n".join(lines) + "\n",
        }

    def send(self, payload: dict[str, Any]) -> None:
        msg = EmailMessage()
        msg["From"] = payload["from"]
        msg["To"] = ", ".join(payload["to"])
        msg["Subject"] = payload["subject"]
        msg.set_content(payload["body"])
        with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS) as smtp:
            if self.user:
                smtp.starttls()
                smtp.login(self.user, self.password)
            smtp.send_message(msg)


def channels(settings: Settings) -> list[Channel]:
    """Every channel the settings switch on, in a fixed order."""
    out: list[Channel] = []
    if settings.alerts.webhook_url:
        out.append(SlackChannel(settings.alerts.webhook_url))
    if settings.alerts.pagerduty_routing_key:
        out.append(
            PagerDutyChannel(
                settings.alerts.pagerduty_routing_key.get_secret_value(), settings.alerts.pagerduty_events_url
            )
        )
    if settings.alerts.emails:
        out.append(
            EmailChannel(
                settings.alerts.smtp_host,
                settings.alerts.smtp_port,
                settings.alerts.smtp_from,
                settings.alerts.emails,
                settings.alerts.smtp_user,
                settings.alerts.smtp_password.get_secret_value(),
            )
        )
    return out


def outbox_path(settings: Settings) -> Path:
    return settings.home / "alerts" / "outbox.jsonl"


def notify(settings: Settings, alert: Alert, *, now: datetime | None = None) -> dict[str, bool]:
    """Send ``alert`` on every configured channel (or record it, in dry-run mode); ``{channel: delivered}``.

    The alert is always logged, so even an unconfigured platform leaves a trace in the task log.
    """
    log.warning("%s", alert.text)
    results: dict[str, bool] = {}
    for channel in channels(settings):
        payload = channel.payload(alert)
        if settings.alerts.dry_run:
            recorded = channel.recorded(payload) if isinstance(channel, PagerDutyChannel) else payload
            _record(settings, channel, recorded, now or datetime.now(UTC))
            results[channel.name] = True
            continue
        try:
            channel.send(payload)
            results[channel.name] = True
        except Exception as exc:  # any channel failure is logged, never raised
            log.error("alert channel %s (%s) failed: %s", channel.name, channel.destination, exc)
            results[channel.name] = False
    return results


def _record(settings: Settings, channel: Channel, payload: dict[str, Any], at: datetime) -> None:
    path = outbox_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"at": at.isoformat(), "channel": channel.name, "destination": channel.destination, "payload": payload}
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, sort_keys=True) + "\n")


def read_outbox(settings: Settings) -> list[dict[str, Any]]:
    """The dry-run records, oldest first (empty when nothing was recorded)."""
    path = outbox_path(settings)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
