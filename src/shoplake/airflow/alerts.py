"""Failure, retry and deadline callbacks of the DAGs, delivered through :mod:`shoplake.monitoring.notify`.

The callbacks only translate Airflow's context into an :class:`~shoplake.monitoring.notify.Alert` (DAG, run,
task, try, log URL, error); the settings decide the channels (Slack webhook, PagerDuty, e-mail) and whether
this is a dry run. Failures and missed deadlines are ``critical`` (they page), retries only ``warning``.

The webhook can also come from the Airflow connection ``shoplake_alerts`` (its host = the full webhook URL,
e.g. a Slack incoming webhook): set in the UI or REST API, it takes effect for running components at once,
where ``ALERT_WEBHOOK_URL`` needs a restart of the stack. The deadline callback runs in the triggerer's
event loop: it looks the connection up and sends from a worker thread, through the sync SDK (the async
lookup misses metadata-DB connections in the triggerer, apache/airflow#63929).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from shoplake.config import Settings, get_settings
from shoplake.monitoring.notify import Alert, notify


def from_context(kind: str, severity: str, context: Any) -> Alert:
    """The alert of a task callback; works with the task-runner's context and with plain mappings."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    error = context.get("exception")
    try:
        log_url = str(getattr(ti, "log_url", "") or "")
    except Exception:  # a missing base URL must not cost the alert itself
        log_url = ""
    return Alert(
        kind=kind,
        severity=severity,
        dag_id=str(getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?")),
        run_id=str(getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "?")),
        task_id=str(getattr(ti, "task_id", "-")),
        try_number=str(getattr(ti, "try_number", "?")),
        log_url=log_url,
        error=str(error) if error else "",
    )


ALERT_CONNECTION_ID: Final = "shoplake_alerts"


def with_connection(settings: Settings, connection: Any) -> Settings:
    """``settings`` with the webhook of the ``shoplake_alerts`` connection, when there is one."""
    url = str(getattr(connection, "host", None) or "").strip()
    return settings.with_env(ALERT_WEBHOOK_URL=url) if url else settings


def _task_settings() -> Settings:
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return with_connection(get_settings(), Connection.get(ALERT_CONNECTION_ID))
    except AirflowNotFoundException:
        return get_settings()


def on_failure(context: Any) -> None:
    notify(_task_settings(), from_context("task failed", "critical", context))


def on_retry(context: Any) -> None:
    notify(_task_settings(), from_context("task up for retry", "warning", context))


async def deadline_missed(context: Any = None, **kwargs: Any) -> None:
    """Deadline callback (runs in the triggerer): the DAG run was not finished by its deadline.

    Airflow passes ``context={"dag_run": {...}, "deadline": {"deadline_time": ...}}`` (JSON-ready dicts).
    """
    run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    due = deadline.get("deadline_time")
    alert = Alert(
        kind="deadline missed",
        severity="critical",
        dag_id=str(kwargs.get("dag_id") or run.get("dag_id") or "?"),
        run_id=str(run.get("dag_run_id") or "-"),
        error=f"not finished by {due}" if due else "",
    )
    await asyncio.to_thread(lambda: notify(_task_settings(), alert))  # never block the triggerer's loop
