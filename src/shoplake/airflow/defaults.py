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
from shoplake.config import Settings, get_settings

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


def deadline(dag_id: str, within: timedelta) -> DeadlineAlert | None:
    """Alert when a run of ``dag_id`` is not finished ``within`` its queueing (replaces Airflow 2's SLAs).

    ``AIRFLOW_DEADLINE_SCALE`` multiplies ``within``: one knob loosens every deadline on a slow machine, and
    a test shrinks it to seconds to watch a real miss reach the alert channel. 0 means no deadline alert:
    ``airflow dags test`` of Airflow 3.3.2 cannot finish a successful run of a DAG that has one (``dag.test``
    hands the encoded alerts to ``DagRun.update_state``, which looks them up as alert ids and fails).
    """
    scale = get_settings().airflow.deadline_scale
    if scale == 0:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=within * scale,
        callback=AsyncCallback(alerts.deadline_missed, kwargs={"dag_id": dag_id}),
    )
