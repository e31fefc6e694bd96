"""Wait for a recent successful run of another DAG, whatever the two DAGs' schedules are.

``ExternalTaskSensor`` matches runs by logical date, which breaks when the schedules differ (weekly ML vs.
6-hourly dbt) and for manual runs (no logical date in Airflow 3). This sensor asks the REST API for the
latest *successful* run of the upstream DAG and is satisfied when it ended no longer than ``max_age``
before this run was due (``run_after``): "the warehouse was rebuilt recently enough to train on".
Reschedule mode frees the worker slot between pokes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator

from shoplake.config import get_settings


def is_recent(end_date: str | None, due: datetime, max_age: timedelta) -> bool:
    """True when ``end_date`` (ISO) is at most ``max_age`` before ``due`` (or after it)."""
    if end_date is None:
        return False
    ended = datetime.fromisoformat(end_date.replace("Z", "+00:00"))
    return ended >= due - max_age


class LatestDagRunSuccessSensor(BaseSensorOperator):
    """Succeeds once ``external_dag_id`` has a successful run that ended within ``max_age`` of this run."""

    template_fields = ("external_dag_id",)

    def __init__(self, *, external_dag_id: str, max_age: timedelta, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.external_dag_id = external_dag_id
        self.max_age = max_age

    def poke(self, context: Any) -> bool:
        from shoplake.airflow.rest import AirflowClient

        due: datetime = context["dag_run"].run_after
        latest = AirflowClient(get_settings()).latest_successful_run(self.external_dag_id)
        if latest is None:
            self.log.info("%s has no successful run yet; waiting", self.external_dag_id)
            return False
        ok = is_recent(latest.end_date, due, self.max_age)
        self.log.info(
            "latest successful %s run: %s ended %s; needed on or after %s -> %s",
            self.external_dag_id,
            latest.run_id,
            latest.end_date,
            (due - self.max_age).isoformat(),
            "satisfied" if ok else "waiting",
        )
        return ok
