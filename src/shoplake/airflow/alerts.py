"""Failure, retry and deadline alerts of the DAGs: a webhook post (Slack-compatible) when one is configured.

``ALERT_WEBHOOK_URL`` takes a Slack incoming-webhook URL or any endpoint accepting ``{"text": ...}``; unset
means no post (the alert is still logged). A failing webhook is logged, never raised: an alerting outage
must not turn a retry into a failure. E-mail (``ALERT_EMAILS``) goes through Airflow's SMTP notifier,
attached in :mod:`shoplake.airflow.defaults`.
"""

from __future__ import annotations

import logging
from typing import Any

from shoplake.config import Settings, get_settings

log = logging.getLogger(__name__)


def message(kind: str, context: Any) -> str:
    """One line naming the DAG, run, task, try and error (what an on-call engineer needs first)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?")
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "?")
    task_id = getattr(ti, "task_id", "-")
    attempt = getattr(ti, "try_number", "?")
    error = context.get("exception")
    text = f"[shoplake] {kind}: dag={dag_id} run={run_id} task={task_id} try={attempt}"
    return f"{text} error={error}" if error else text


def post(settings: Settings, text: str) -> bool:
    """Send ``text`` to the webhook; True when it was accepted. Logs instead of raising."""
    log.warning("%s", text)
    if not settings.alert_webhook_url:
        return False
    import requests

    try:
        resp = requests.post(settings.alert_webhook_url, json={"text": text}, timeout=10)
    except requests.RequestException as exc:
        log.error("alert webhook unreachable: %s", exc)
        return False
    if resp.status_code >= 300:
        log.error("alert webhook answered %s: %s", resp.status_code, resp.text[:200])
        return False
    return True


def on_failure(context: Any) -> None:
    post(get_settings(), message("task failed", context))


def on_retry(context: Any) -> None:
    post(get_settings(), message("task up for retry", context))


async def deadline_missed(context: Any = None, **kwargs: Any) -> None:
    """Deadline callback (runs in the triggerer): the DAG run was not finished by its deadline."""
    dag_id = kwargs.get("dag_id", "?")
    detail = f" {context}" if context else ""
    post(get_settings(), f"[shoplake] deadline missed: dag={dag_id}{detail}")
