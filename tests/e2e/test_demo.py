"""End to end: ``shoplake demo`` through the real scheduler, then the ML DAG with gates that cannot pass.

Slow (Spark catch-up, dbt, model training, four DAG runs); this is the CI end-to-end test of issue 7.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shoplake.airflow.rest import AirflowClient
from shoplake.config import Settings, get_settings
from shoplake.demo import DemoOptions, DemoSummary, run_demo, training_window

N = 5_000
ML_DAG = "ml_pipeline_orchestration"


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[Settings, DemoSummary]]:
    settings = get_settings()
    yield settings, run_demo(settings, DemoOptions(num_transactions=N), say=lambda _: None)


@pytest.mark.e2e
def test_demo_moves_data_through_every_layer(demo: tuple[Settings, DemoSummary]) -> None:
    _, summary = demo
    states = {s["step"]: s["state"] for s in summary.steps}
    assert states["stack up"] == "healthy"
    assert {k: v for k, v in states.items() if k != "stack up"} == dict.fromkeys(list(states)[1:], "success")
    assert summary.counts["kafka_messages_added"] == N
    delta = summary.counts["delta"]
    assert delta["silver"] >= N - delta.get("quarantine", 0) > 0
    assert delta["bronze"] >= delta["silver"]
    assert summary.counts["warehouse"]["raw.transactions"] >= N - delta.get("quarantine", 0) > 0
    assert summary.dbt_tests.get("pass", 0) > 0
    assert summary.dbt_tests.get("fail", 0) == summary.dbt_tests.get("error", 0) == 0
    assert summary.health["healthy"], summary.health["problems"]


@pytest.mark.e2e
def test_demo_deploys_exactly_when_the_gates_pass(demo: tuple[Settings, DemoSummary]) -> None:
    _, summary = demo
    model = summary.model
    assert set(model["test_metrics"]) >= {"precision", "recall", "f1"}
    assert model["deploy_task"] == ("success" if model["deploy"] else "skipped")
    assert bool(model["reasons"]) is not model["deploy"]


@pytest.mark.e2e
def test_ml_deploy_is_skipped_when_gates_fail(demo: tuple[Settings, DemoSummary]) -> None:
    settings, _ = demo
    client = AirflowClient(settings)
    variables = {"ml_min_precision": "1.0", "ml_min_recall": "1.0"}
    for key, value in variables.items():
        client.request("POST", "/variables", json={"key": key, "value": value})
    try:
        done = client.trigger_and_wait(ML_DAG, training_window(DemoOptions(num_transactions=N)), timeout=1800)
        tasks = client.task_states(ML_DAG, done.run_id)
        decision = client.xcom(ML_DAG, done.run_id, "evaluate_model", "decision")
    finally:
        for key in variables:
            client.request("DELETE", f"/variables/{key}")
    assert done.state == "success", tasks
    assert tasks["evaluate_model"] == "success"
    assert tasks["deploy_model"] == "skipped"
    assert decision["deploy"] is False
    assert decision["thresholds"]["precision"] == decision["thresholds"]["recall"] == 1.0
    assert any("precision" in r or "recall" in r for r in decision["reasons"])
