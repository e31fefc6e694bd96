"""A small client of the Airflow 3 REST API (``/api/v2``) for the demo, the tests and the dbt-run sensor.

It authenticates like a user of the UI (SimpleAuthManager: ``POST /auth/token`` with the admin user and
password from the settings) and keeps the JWT for its lifetime; a 401 triggers one fresh login.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from shoplake.config import Settings

log = logging.getLogger(__name__)

TERMINAL_STATES: Final = frozenset({"success", "failed"})
POLL_SECONDS: Final = 2.0


class AirflowApiError(RuntimeError):
    """The API answered with an error; the message carries status and body."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DagRun:
    dag_id: str
    run_id: str
    state: str
    conf: dict[str, Any]
    start_date: str | None
    end_date: str | None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> DagRun:
        return cls(
            dag_id=str(raw["dag_id"]),
            run_id=str(raw["dag_run_id"]),
            state=str(raw["state"]),
            conf=dict(raw.get("conf") or {}),
            start_date=raw.get("start_date"),
            end_date=raw.get("end_date"),
        )


def base_url(settings: Settings) -> str:
    host = "localhost" if settings.bind_host in ("0.0.0.0", "127.0.0.1") else settings.bind_host
    return f"http://{host}:{settings.airflow.api_port}"


class AirflowClient:
    def __init__(self, settings: Settings, timeout: float = 30.0) -> None:
        self.settings = settings
        self.url = base_url(settings)
        self.timeout = timeout
        self._token: str | None = None

    # ---- plumbing ---------------------------------------------------------------------------------------
    def _login(self) -> str:
        import requests

        resp = requests.post(
            f"{self.url}/auth/token",
            json={
                "username": self.settings.airflow.admin_user,
                "password": self.settings.airflow.admin_password.get_secret_value(),
            },
            timeout=self.timeout,
        )
        if resp.status_code not in (200, 201):
            raise AirflowApiError(f"login to {self.url} failed: {resp.status_code} {resp.text[:300]}", resp.status_code)
        return str(resp.json()["access_token"])

    def request(self, method: str, path: str, *, prefix: str = "/api/v2", **kwargs: Any) -> Any:
        """``method`` on ``prefix + path`` as the admin user; ``prefix="/ui"`` reaches the UI's own API."""
        import requests

        for attempt in (1, 2):
            if self._token is None:
                self._token = self._login()
            resp = requests.request(
                method,
                f"{self.url}{prefix}{path}",
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self.timeout,
                **kwargs,
            )
            if resp.status_code == 401 and attempt == 1:
                self._token = None
                continue
            if resp.status_code >= 400:
                raise AirflowApiError(f"{method} {path}: {resp.status_code} {resp.text[:500]}", resp.status_code)
            return resp.json() if resp.content else None
        raise AssertionError("unreachable")

    # ---- API ----------------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        import requests

        resp = requests.get(f"{self.url}/api/v2/monitor/health", timeout=self.timeout)
        resp.raise_for_status()
        return dict(resp.json())

    def wait_for_dag(self, dag_id: str, timeout: float) -> None:
        """Wait until the DAG processor has parsed and serialized ``dag_id`` (it is then triggerable)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.request("GET", f"/dags/{dag_id}")
                return
            except AirflowApiError as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(POLL_SECONDS)

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(
        self,
        dag_id: str,
        conf: dict[str, Any] | None = None,
        run_id: str | None = None,
        logical_date: str | None = None,
    ) -> DagRun:
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return DagRun.of(self.request("POST", f"/dags/{dag_id}/dagRuns", json=body))

    def due_slot(self, dag_id: str, now: datetime) -> str | None:
        """The logical date of the scheduled run that unpausing ``dag_id`` would create at once, if any.

        With ``catchup=False`` Airflow still runs the latest missed interval when a DAG is unpaused; a manual
        run created with that logical date takes the slot (the scheduler skips a slot that already has a run).
        """
        slot = self.request("GET", f"/dags/{dag_id}").get("next_dagrun_logical_date")
        if not slot or datetime.fromisoformat(str(slot).replace("Z", "+00:00")) > now:
            return None
        # A paused DAG's next slot does not advance: an earlier run may have taken it already (then the
        # scheduler skips the slot anyway, and a second run with that logical date would be refused).
        taken = self.request(
            "GET", f"/dags/{dag_id}/dagRuns", params={"logical_date_gte": slot, "logical_date_lte": slot, "limit": 1}
        )
        return None if taken["total_entries"] else str(slot)

    def run(self, dag_id: str, run_id: str) -> DagRun:
        return DagRun.of(self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))

    def wait(self, dag_id: str, run_id: str, timeout: float, on_poll: Callable[[], None] | None = None) -> DagRun:
        """Poll until the run is success/failed; TimeoutError (with the last state) past ``timeout``.

        ``on_poll`` runs before every poll (:meth:`trigger_and_wait` drops scheduled runs there).
        """
        deadline = time.monotonic() + timeout
        while True:
            if on_poll is not None:
                on_poll()
            run = self.run(dag_id, run_id)
            if run.state in TERMINAL_STATES:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run_id} still {run.state} after {timeout:.0f} s")
            time.sleep(POLL_SECONDS)

    def queued_scheduled_runs(self, dag_id: str) -> set[str]:
        """Run ids of ``dag_id``'s scheduled runs that are queued: created, no task started yet."""
        raw = self.request("GET", f"/dags/{dag_id}/dagRuns", params={"state": "queued", "limit": 100})
        return {str(r["dag_run_id"]) for r in raw.get("dag_runs") or [] if r.get("run_type") == "scheduled"}

    def drop_queued_scheduled_runs(self, dag_id: str, keep: set[str]) -> None:
        """Delete the queued scheduled runs of ``dag_id`` not in ``keep`` (each one logged)."""
        for run_id in sorted(self.queued_scheduled_runs(dag_id) - keep):
            self.request("DELETE", f"/dags/{dag_id}/dagRuns/{run_id}")
            log.info(
                "%s: dropped scheduled run %s, created while the DAG was unpaused for a manual run", dag_id, run_id
            )

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        raw = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {str(t["task_id"]): t.get("state") for t in raw["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        raw = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"deserialize": "true"},
        )
        return raw.get("value")

    def latest_successful_run(self, dag_id: str) -> DagRun | None:
        raw = self.request(
            "GET", f"/dags/{dag_id}/dagRuns", params={"state": "success", "order_by": "-end_date", "limit": 1}
        )
        runs = raw.get("dag_runs") or []
        return DagRun.of(runs[0]) if runs else None

    def trigger_and_wait(self, dag_id: str, conf: dict[str, Any], timeout: float) -> DagRun:
        """Run ``dag_id`` through the scheduler and wait for the result; its pause state is restored after.

        A paused DAG is unpaused only for the run, and the run takes the logical date of the scheduled slot
        that unpausing would start at once (:meth:`due_slot`), so no scheduled run starts next to it. A slot
        that falls due *during* the run (the top of the hour, for the ingestion DAG) gets a scheduled run
        too, with the default conf: ``max_active_runs=1`` keeps it queued behind ours, and it is deleted
        before it starts - the DAG was paused, so nobody asked for it. (Left alone, it would start as soon as
        ours ended and add the default conf's transactions to the ones the caller asked for.)
        """
        paused = bool(self.request("GET", f"/dags/{dag_id}")["is_paused"])
        run = self.trigger(dag_id, conf, logical_date=self.due_slot(dag_id, datetime.now(UTC)))
        if not paused:
            return self.wait(dag_id, run.run_id, timeout)
        queued_before = self.queued_scheduled_runs(dag_id)
        self.unpause(dag_id)
        try:
            return self.wait(
                dag_id, run.run_id, timeout, on_poll=lambda: self.drop_queued_scheduled_runs(dag_id, queued_before)
            )
        finally:
            self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": True})
            self.drop_queued_scheduled_runs(dag_id, queued_before)
