"""``AirflowClient.trigger_and_wait`` on a paused DAG, against a fake of the REST API (pure control flow).

The real API is exercised by ``tests/integration/test_airflow_dags.py``; this pins down what that test can
only hit by chance: a scheduled slot falling due while the DAG is unpaused for a manual run.
"""

from __future__ import annotations

from typing import Any

import pytest

from shoplake.airflow import rest
from shoplake.airflow.rest import AirflowClient
from shoplake.config import Settings

pytestmark = pytest.mark.unit

DAG = "data_ingestion_pipeline"


class FakeAirflow(AirflowClient):
    """A paused hourly DAG whose slot falls due during the manual run (``max_active_runs=1`` queues it)."""

    def __init__(self, runs_until_done: int) -> None:
        super().__init__(Settings.from_env({}))
        self.paused = True
        self.polls = 0
        self.runs_until_done = runs_until_done
        self.runs: dict[str, dict[str, Any]] = {
            "scheduled__old": {"dag_run_id": "scheduled__old", "run_type": "scheduled", "state": "queued"}
        }
        self.deleted: list[str] = []
        self.pause_history: list[bool] = []

    def request(self, method: str, path: str, *, prefix: str = "/api/v2", **kwargs: Any) -> Any:
        if method == "GET" and path == f"/dags/{DAG}":
            return {"is_paused": self.paused, "next_dagrun_logical_date": None}
        if method == "PATCH" and path == f"/dags/{DAG}":
            self.paused = bool(kwargs["json"]["is_paused"])
            self.pause_history.append(self.paused)
            return {}
        if method == "POST" and path == f"/dags/{DAG}/dagRuns":
            self.runs["manual__1"] = {"dag_run_id": "manual__1", "run_type": "manual", "state": "queued"}
            return self._full(self.runs["manual__1"])
        if method == "GET" and path == f"/dags/{DAG}/dagRuns/manual__1":
            self.polls += 1
            if self.polls == 2 and not self.paused:  # the top of the hour, while ours runs
                self.runs["scheduled__new"] = {
                    "dag_run_id": "scheduled__new",
                    "run_type": "scheduled",
                    "state": "queued",
                }
            manual = self.runs["manual__1"]
            manual["state"] = "success" if self.polls >= self.runs_until_done else "running"
            return self._full(manual)
        if method == "GET" and path == f"/dags/{DAG}/dagRuns":
            state = kwargs["params"]["state"]
            return {"dag_runs": [self._full(r) for r in self.runs.values() if r["state"] == state]}
        if method == "DELETE" and path.startswith(f"/dags/{DAG}/dagRuns/"):
            run_id = path.rsplit("/", 1)[1]
            del self.runs[run_id]
            self.deleted.append(run_id)
            return None
        raise AssertionError(f"unexpected {method} {path}")

    @staticmethod
    def _full(run: dict[str, Any]) -> dict[str, Any]:
        return {"dag_id": DAG, "conf": {}, "start_date": None, "end_date": None, **run}


@pytest.fixture(autouse=True)
def no_poll_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rest, "POLL_SECONDS", 0.0)


@pytest.mark.parametrize("runs_until_done", [2, 4])
def test_a_slot_due_during_the_run_is_dropped_before_it_starts(runs_until_done: int) -> None:
    """Due in the run's last poll (dropped after it) or earlier (dropped while ours still runs)."""
    airflow = FakeAirflow(runs_until_done)
    run = airflow.trigger_and_wait(DAG, {"num_transactions": 250}, timeout=60)
    assert run.state == "success"
    assert airflow.deleted == ["scheduled__new"]
    assert "scheduled__old" in airflow.runs  # queued before we unpaused: not ours to drop
    assert airflow.pause_history == [False, True] and airflow.paused


def test_an_unpaused_dag_keeps_its_scheduled_runs() -> None:
    airflow = FakeAirflow(3)
    airflow.paused = False
    airflow.trigger_and_wait(DAG, {}, timeout=60)
    assert airflow.deleted == [] and airflow.pause_history == []
