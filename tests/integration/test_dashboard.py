"""The performance dashboard against the real Airflow of the stack, and rendered in a real headless Chromium.

The test creates runs of its own (one real ingestion run, one run failed through the API), then compares the
dashboard's numbers with the API's answers fetched here through other endpoints (per-run task instances
instead of the batch list, unfiltered deadline list) and computed with numpy.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shoplake.airflow.rest import AirflowClient
from shoplake.config import Settings
from shoplake.monitoring.dashboard import Dashboard, build
from tests.integration import browser

DAG = "data_ingestion_pipeline"
RUN_TIMEOUT = 600.0


def _all(client: AirflowClient, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        raw = client.request("GET", path, params={**params, "limit": 100, "offset": len(items)})
        items += raw[key]
        if not raw[key] or len(items) >= raw["total_entries"]:
            return items


@pytest.fixture(scope="module")
def api(stack: Settings, airflow: AirflowClient) -> AirflowClient:
    """A client with a long read timeout: on a loaded shared machine the API can take > 30 s to answer."""
    return AirflowClient(stack, timeout=180.0)


@pytest.fixture(scope="module")
def dashboard(stack: Settings, api: AirflowClient) -> Dashboard:
    airflow = api
    ok = airflow.trigger_and_wait(DAG, {"num_transactions": 50, "seed": 11, "start": "2026-03-02T00:00:00Z"}, 600)
    assert ok.state == "success", airflow.task_states(DAG, ok.run_id)
    # A failed run without waiting for a real failure: created while the DAG is paused (it stays queued),
    # then failed through the API like an operator would in the UI.
    if not airflow.request("GET", f"/dags/{DAG}")["is_paused"]:
        pytest.skip(f"{DAG} is unpaused: a queued run would start")
    failed = airflow.trigger(DAG, {"num_transactions": 1})
    airflow.request("PATCH", f"/dags/{DAG}/dagRuns/{failed.run_id}", json={"state": "failed"})
    assert airflow.run(DAG, failed.run_id).state == "failed"
    return build(stack, datetime.now(UTC), limit=100, client=airflow)


@pytest.mark.integration
def test_dashboard_numbers_equal_the_airflow_api(dashboard: Dashboard, api: AirflowClient) -> None:
    airflow = api
    dags = {d["dag_id"]: d for d in dashboard.content["airflow"]["dags"]}
    assert set(dags) >= {DAG, "dbt_orchestration", "ml_pipeline_orchestration", "spark_streaming_orchestration"}
    for dag_id, shown in dags.items():
        runs = _all(airflow, f"/dags/{dag_id}/dagRuns", "dag_runs", order_by="-run_after")[:100]
        states = [r["state"] for r in runs]
        assert shown["runs"] == len(runs)
        assert (shown["success"], shown["failed"]) == (states.count("success"), states.count("failed"))
        finished = states.count("success") + states.count("failed")
        assert shown["success_rate"] == (states.count("success") / finished if finished else None)
        durations: dict[str, list[float]] = defaultdict(list)
        for run in runs:
            for ti in airflow.request("GET", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances")[
                "task_instances"
            ]:
                if ti["state"] == "success" and ti["duration"] is not None:
                    durations[ti["task_id"]].append(ti["duration"])
        assert set(shown["tasks"]) == set(durations)
        for task_id, values in durations.items():
            assert shown["tasks"][task_id]["count"] == len(values)
            assert shown["tasks"][task_id]["p50"] == pytest.approx(np.percentile(values, 50), abs=1e-3)
            assert shown["tasks"][task_id]["p95"] == pytest.approx(np.percentile(values, 95), abs=1e-3)
        deadlines = airflow.request("GET", f"/dags/{dag_id}/dagRuns/~/deadlines", params={"limit": 100}, prefix="/ui")
        assert shown["deadline_misses"] == sum(1 for d in deadlines["deadlines"] if d["missed"])
    ingestion = dags[DAG]
    assert ingestion["success"] >= 1 and ingestion["failed"] >= 1
    assert set(ingestion["tasks"]) == {
        "check_kafka_health",
        "check_schema_registry",
        "seed_transactions",
        "verify_kafka_topic",
    }
    queued = airflow.request("GET", "/dags/~/dagRuns/~/taskInstances", params={"state": "queued", "limit": 1})
    assert dashboard.content["airflow"]["queued_tasks"] == queued["total_entries"]


@pytest.mark.integration
@pytest.mark.skipif(not browser.available(), reason="chromium missing: scripts/bootstrap.sh installs it")
def test_dashboard_renders_in_headless_chromium(dashboard: Dashboard, tmp_path: Path) -> None:
    page = browser.render(dashboard.html_path, tmp_path)
    assert page.screenshot.stat().st_size > 20_000, "a page with tables and plots is not a blank screenshot"
    assert page.console == [], page.console
    text = browser.text_by_id(page.dom)
    ingestion = next(d for d in dashboard.content["airflow"]["dags"] if d["dag_id"] == DAG)
    row = text[f"dag-{DAG}"]
    assert row[:4] == [DAG, str(ingestion["runs"]), str(ingestion["success"]), str(ingestion["failed"])]
    assert f"{ingestion['success_rate'] * 100:.1f}%" in row
    p95 = ingestion["tasks"]["seed_transactions"]["p95"]
    assert f"{p95:,.2f}" in text[f"task-{DAG}.seed_transactions"]
    assert text["queued-tasks"] == [str(dashboard.content["airflow"]["queued_tasks"])]
    assert page.dom.count("<svg") >= 2, "the runs-by-state and duration plots are inlined"


@pytest.mark.integration
@pytest.mark.skipif(not browser.available(), reason="chromium missing: scripts/bootstrap.sh installs it")
def test_the_browser_check_catches_script_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p id='x'>42</p><script>console.error('boom'); missing();</script></body></html>")
    page = browser.render(bad, tmp_path)
    assert any("boom" in line for line in page.console)
    assert any("Uncaught ReferenceError" in line for line in page.console)
    assert browser.text_by_id(page.dom)["x"] == ["42"]
