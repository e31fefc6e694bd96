"""Defaults every Shoplake DAG shares: owner, retries with exponential backoff, alert callbacks, deadlines.

Alerts go through :mod:`shoplake.airflow.alerts` -> :mod:`shoplake.monitoring.notify` (Slack, PagerDuty,
e-mail as the settings say), so a DAG file never branches on the environment. The seed's
``email_on_failure``/``email_on_retry`` task arguments are deprecated in Airflow 3: ``ALERT_EMAILS`` is one of
the notifier's channels instead (on success: nothing).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from shoplake.airflow import alerts
from shoplake.config import Settings

OWNER: Final = "data-platform"
RETRIES: Final = 2
RETRY_DELAY: Final = timedelta(seconds=30)
MAX_RETRY_DELAY: Final = timedelta(minutes=10)


def default_args(settings: Settings, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": MAX_RETRY_DELAY,
        "on_failure_callback": [alerts.on_failure],
        "on_retry_callback": [alerts.on_retry],
    }
    args.update(overrides)
    return args


def deadline(dag_id: str, within: timedelta) -> DeadlineAlert:
    """Alert when a run of ``dag_id`` is not finished ``within`` its queueing (replaces Airflow 2's SLAs)."""
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=within,
        callback=AsyncCallback(alerts.deadline_missed, kwargs={"dag_id": dag_id}),
    )
