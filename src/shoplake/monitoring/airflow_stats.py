"""The seed's key Airflow metrics, read from Airflow's REST API: success and failure rate, task durations
(p50/p95, overall and per day), deadline misses and queue length.

Everything comes from the API (never from the metadata database), so the numbers are the ones the UI
shows and the dashboard can run anywhere the API is reachable. Rates use finished runs only (a running
run has not succeeded or failed yet); durations use successful task tries (a failed try's duration says
when it broke, not how long the work takes).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from shoplake.airflow.rest import AirflowClient

PAGE: Final = 100  # Airflow's default [api] maximum_page_limit


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks (numpy's default method)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0-100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class DurationStats:
    count: int
    p50: float
    p95: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> DurationStats:
        return cls(len(seconds), round(percentile(seconds, 50), 3), round(percentile(seconds, 95), 3))


@dataclass(frozen=True)
class DagStats:
    dag_id: str
    runs: int  # the runs considered (the latest ``limit``)
    success: int
    failed: int
    unfinished: int
    deadline_misses: int  # over every run of the DAG
    tasks: dict[str, DurationStats] = field(default_factory=dict)  # per task id
    daily: dict[str, DurationStats] = field(default_factory=dict)  # all tasks, per UTC day of their start
    last_run: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return self.success + self.failed

    @property
    def success_rate(self) -> float | None:
        return self.success / self.finished if self.finished else None

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "runs": self.runs,
            "success": self.success,
            "failed": self.failed,
            "unfinished": self.unfinished,
            "success_rate": self.success_rate,
            "failure_rate": self.failure_rate,
            "deadline_misses": self.deadline_misses,
            "tasks": {k: vars(v) for k, v in self.tasks.items()},
            "daily": {k: vars(v) for k, v in self.daily.items()},
            "last_run": self.last_run,
        }


@dataclass(frozen=True)
class AirflowStats:
    dags: list[DagStats]
    queued_tasks: int
    running_tasks: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "queued_tasks": self.queued_tasks,
            "running_tasks": self.running_tasks,
            "dags": [d.as_dict() for d in self.dags],
        }


def _pages(client: AirflowClient, path: str, key: str, params: dict[str, Any], limit: int) -> Iterator[dict[str, Any]]:
    """Up to ``limit`` items of a paginated GET collection."""
    offset = 0
    while offset < limit:
        raw = client.request("GET", path, params={**params, "limit": min(PAGE, limit - offset), "offset": offset})
        items = raw[key]
        yield from items
        offset += len(items)
        if not items or offset >= raw["total_entries"]:
            return


def _task_instances(client: AirflowClient, dag_id: str, run_ids: list[str]) -> list[dict[str, Any]]:
    """Successful task instances of the given runs (batch endpoint: one query per page, not per run)."""
    out: list[dict[str, Any]] = []
    body: dict[str, Any] = {"dag_ids": [dag_id], "dag_run_ids": run_ids, "state": ["success"], "page_limit": PAGE}
    while run_ids:
        raw = client.request("POST", "/dags/~/dagRuns/~/taskInstances/list", json={**body, "page_offset": len(out)})
        out += raw["task_instances"]
        if not raw["task_instances"] or len(out) >= raw["total_entries"]:
            break
    return out


def _count(client: AirflowClient, path: str, params: dict[str, Any] | None = None, prefix: str = "/api/v2") -> int:
    return int(client.request("GET", path, params={**(params or {}), "limit": 1}, prefix=prefix)["total_entries"])


def dag_stats(client: AirflowClient, dag_id: str, limit: int) -> DagStats:
    runs = list(_pages(client, f"/dags/{dag_id}/dagRuns", "dag_runs", {"order_by": "-run_after"}, limit))
    states = [str(r["state"]) for r in runs]
    durations: dict[str, list[float]] = defaultdict(list)
    by_day: dict[str, list[float]] = defaultdict(list)
    for ti in _task_instances(client, dag_id, [str(r["dag_run_id"]) for r in runs]):
        if ti.get("duration") is None:
            continue
        durations[str(ti["task_id"])].append(float(ti["duration"]))
        by_day[str(ti["start_date"])[:10]].append(float(ti["duration"]))
    last = runs[0] if runs else {}
    return DagStats(
        dag_id=dag_id,
        runs=len(runs),
        success=states.count("success"),
        failed=states.count("failed"),
        unfinished=len(states) - states.count("success") - states.count("failed"),
        # The UI's deadline list (Airflow 3.1+ has no public endpoint for it yet).
        deadline_misses=_count(client, f"/dags/{dag_id}/dagRuns/~/deadlines", {"missed": "true"}, prefix="/ui"),
        tasks={task: DurationStats.of(v) for task, v in sorted(durations.items())},
        daily={day: DurationStats.of(v) for day, v in sorted(by_day.items())},
        last_run={k: last.get(k) for k in ("dag_run_id", "state", "start_date", "end_date")} if last else {},
    )


def collect(client: AirflowClient, limit: int = 100, dag_ids: Sequence[str] | None = None) -> AirflowStats:
    """Stats of ``dag_ids`` (default: every DAG Airflow knows) over each one's latest ``limit`` runs."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    ids = list(dag_ids) if dag_ids else [str(d["dag_id"]) for d in _pages(client, "/dags", "dags", {}, 10_000)]
    return AirflowStats(
        dags=[dag_stats(client, dag_id, limit) for dag_id in sorted(ids)],
        queued_tasks=_count(client, "/dags/~/dagRuns/~/taskInstances", {"state": "queued"}),
        running_tasks=_count(client, "/dags/~/dagRuns/~/taskInstances", {"state": "running"}),
    )
