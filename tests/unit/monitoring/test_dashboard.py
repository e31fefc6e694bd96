"""Dashboard logic without a server: percentiles, API pagination, the streaming series, the page itself.

The numbers against a real Airflow and the page in a real browser are in tests/integration/test_dashboard.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoplake.airflow.rest import AirflowClient
from shoplake.monitoring.airflow_stats import collect, percentile
from shoplake.monitoring.dashboard import render, streaming_series


@pytest.mark.unit
@settings(deadline=None, max_examples=60)
@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=60), st.floats(0, 100))
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-9)


@pytest.mark.unit
def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


class FakeApi:
    """Answers the few endpoints ``collect`` uses, honouring limit/offset like Airflow (max 100 per page)."""

    def __init__(self, runs: list[dict[str, Any]], tis: list[dict[str, Any]], missed: int, queued: int) -> None:
        self.runs, self.tis, self.missed, self.queued = runs, tis, missed, queued
        self.calls: list[str] = []

    def request(self, method: str, path: str, *, prefix: str = "/api/v2", **kw: Any) -> Any:
        self.calls.append(f"{method} {prefix}{path}")
        params = kw.get("params") or {}
        if path == "/dags":
            return {"dags": [{"dag_id": "d"}], "total_entries": 1}
        if path == "/dags/d/dagRuns":
            off, lim = params["offset"], min(params["limit"], 100)
            return {"dag_runs": self.runs[off : off + lim], "total_entries": len(self.runs)}
        if path == "/dags/~/dagRuns/~/taskInstances/list":
            body = kw["json"]
            wanted = [t for t in self.tis if t["run_id"] in body["dag_run_ids"] and t["state"] in body["state"]]
            off = body["page_offset"]
            return {"task_instances": wanted[off : off + 100], "total_entries": len(wanted)}
        if path == "/dags/d/dagRuns/~/deadlines" and prefix == "/ui":
            return {"deadlines": [], "total_entries": self.missed}
        if path == "/dags/~/dagRuns/~/taskInstances":
            return {"task_instances": [], "total_entries": self.queued if params["state"] == "queued" else 0}
        raise AssertionError(f"unexpected call {method} {prefix}{path}")


@pytest.mark.unit
def test_collect_pages_through_runs_and_task_instances() -> None:
    states = ["success"] * 180 + ["failed"] * 60 + ["running"] * 10
    runs = [{"dag_run_id": f"r{i}", "state": s} for i, s in enumerate(states)]
    tis: list[dict[str, Any]] = [
        {
            "run_id": f"r{i}",
            "task_id": t,
            "state": "success",
            "duration": float(i % 17 + n),
            "start_date": f"2026-11-{1 + i % 3:02d}T00:00:00Z",
        }
        for i in range(250)
        for n, t in enumerate(("a", "b"))
    ]
    api = FakeApi(runs, tis, missed=3, queued=4)
    stats = collect(cast(AirflowClient, api), limit=220)
    (d,) = stats.dags
    assert (d.runs, d.success, d.failed, d.unfinished) == (220, 180, 40, 0)
    assert d.success_rate == pytest.approx(180 / 220) and d.failure_rate == pytest.approx(40 / 220)
    a = [t["duration"] for t in tis if t["task_id"] == "a" and int(t["run_id"][1:]) < 220]
    assert d.tasks["a"].count == 220 and d.tasks["a"].p95 == pytest.approx(np.percentile(a, 95), abs=1e-3)
    assert list(d.daily) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert (d.deadline_misses, stats.queued_tasks) == (3, 4)
    assert api.calls.count("GET /api/v2/dags/d/dagRuns") == 3  # 100 + 100 + 20
    with pytest.raises(ValueError, match="limit"):
        collect(cast(AirflowClient, api), limit=0)


@pytest.mark.unit
def test_streaming_series_throughput_and_freshness(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    rec = {"query": "silver", "processed_rows_per_second": 500.0, "input_rows": 1000}
    lines = [json.dumps({**rec, "timestamp": f"2026-11-27T10:00:{s:02d}.000Z"}) for s in (0, 10, 20)]
    log.write_text('{"cut line\n' + "\n".join(lines) + "\n")
    series = streaming_series(log, now=datetime(2026, 11, 27, 10, 1, 20, tzinfo=UTC))
    q = series["queries"]["silver"]
    assert (q["batches"], q["rows"], q["freshness_seconds"]) == (3, 3000, 60.0)
    assert streaming_series(tmp_path / "missing.jsonl", datetime.now(UTC))["queries"] == {}


@pytest.mark.unit
def test_page_shows_the_numbers_without_scripts_or_external_resources() -> None:
    runs = [{"dag_run_id": f"r{i}", "state": s} for i, s in enumerate(["success", "success", "failed"])]
    tis = [{"run_id": "r0", "task_id": "t", "state": "success", "duration": 2.5, "start_date": "2026-11-27T00:00Z"}]
    stats = collect(cast(AirflowClient, FakeApi(runs, tis, missed=1, queued=2)), limit=10)
    content = {
        "generated_at": "2026-11-27T12:00:00+00:00",
        "runs_per_dag": 10,
        "streaming": {"progress_file": "/x/progress.jsonl", "queries": {}},
    }
    page = render(content, stats)
    assert "<script" not in page and "<link" not in page and " src=" not in page and 'href="http' not in page
    assert "<td class='success-rate'>66.7%</td>" in page and "<td class='failure-rate'>33.3%</td>" in page
    assert "<div class='v' id='queued-tasks'>2</div>" in page and "id='deadline-misses'>1<" in page
    assert "<td class='p50'>2.50</td>" in page and page.count("<svg") == 2  # runs by state + durations per day
