"""Each of the four DAGs run with the real ``airflow dags test`` CLI against the real local stack.

The scheduler-driven path is covered by ``tests/e2e/test_demo.py``; this module checks what ``airflow dags
test`` (the command a DAG author runs) does with the stack's AIRFLOW_HOME and metadata DB, in dependency
order - ingestion -> streaming catch-up + streaming health DAG -> dbt -> ML - and asserts the data each
DAG leaves behind, not just its state: Kafka offsets, Delta and ``raw`` rows, dbt marts and test counts,
the MLflow run and the ``production`` alias, the health report's content. The ML run has its precision
gate raised to 0.999 through the Variable, so ``deploy_model`` must be skipped (the scheduler test proves
the deploying path). Bad conf must be refused before any run or task exists.

The tests share state and run in file order (each one needs the previous one's data).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shoplake.airflow.rest import AirflowClient, DagRun
from shoplake.config import Settings
from shoplake.stack.airflow import cli_env

N = 4_000
START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 14
CLI_TIMEOUT = 900.0
INGESTION, STREAMING, DBT, ML = (
    "data_ingestion_pipeline",
    "spark_streaming_orchestration",
    "dbt_orchestration",
    "ml_pipeline_orchestration",
)


def dags_test(settings: Settings, dag_id: str, conf: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """``airflow dags test DAG_ID [-c CONF]`` with the environment ``shoplake airflow`` gives it."""
    argv = ["dags", "test", dag_id]
    if conf is not None:
        argv += ["-c", json.dumps(conf)]
    return subprocess.run(
        [sys.executable, "-m", "airflow", *argv],
        env=cli_env(settings, argv),
        cwd=settings.airflow.home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def run_count(client: AirflowClient, dag_id: str) -> int:
    return int(client.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 1})["total_entries"])


def latest_test_run(client: AirflowClient, dag_id: str) -> DagRun:
    raw = client.request("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 1})
    return DagRun.of(raw["dag_runs"][0])


def run_dag(
    settings: Settings, client: AirflowClient, dag_id: str, conf: dict[str, Any] | None = None
) -> tuple[DagRun, str]:
    """Run ``dag_id`` with ``airflow dags test``: the run it created (which must be new) and the CLI output.

    Without an executor the task logs go to the CLI's output, so that is where a task's messages are read.
    """
    before = run_count(client, dag_id)
    done = dags_test(settings, dag_id, conf)
    output = done.stdout + done.stderr
    assert run_count(client, dag_id) == before + 1, output[-3000:]
    return latest_test_run(client, dag_id), output


def total_offsets(settings: Settings) -> int:
    from shoplake.ingestion.topics import ensure_topic
    from shoplake.ingestion.verify import end_offsets

    ensure_topic(settings)
    return sum(end_offsets(settings).values())


def delta_rows(settings: Settings, layer: str) -> int:
    from deltalake import DeltaTable

    path = Path(settings.lake.base_path) / layer / "transactions"
    if not (path / "_delta_log").is_dir():
        return 0
    return int(DeltaTable(str(path)).to_pyarrow_dataset().count_rows())


def raw_rows_in_window(settings: Settings) -> int:
    import psycopg

    with psycopg.connect(settings.postgres.dsn(), connect_timeout=10) as conn:
        row = conn.execute(
            "select count(*) from raw.transactions where event_time >= %s and event_time < %s",
            (START, START + timedelta(days=DAYS)),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture(scope="module")
def client(airflow: AirflowClient) -> AirflowClient:
    return airflow


@pytest.mark.integration
@pytest.mark.parametrize(
    ("dag_id", "conf", "named"),
    [
        (INGESTION, {"span_days": "a week"}, "span_days"),  # num_transactions: test_airflow_dags.py (REST)
        (ML, {"window_start": "last tuesday"}, "window_start"),
    ],
)
def test_invalid_conf_is_refused_before_any_run(
    stack: Settings, client: AirflowClient, dag_id: str, conf: dict[str, Any], named: str
) -> None:
    runs, offsets = run_count(client, dag_id), total_offsets(stack)
    done = dags_test(stack, dag_id, conf)
    assert done.returncode != 0
    assert named in done.stderr + done.stdout
    assert run_count(client, dag_id) == runs
    assert total_offsets(stack) == offsets


@pytest.mark.integration
def test_1_ingestion_produces_exactly_the_requested_transactions(stack: Settings, client: AirflowClient) -> None:
    before = total_offsets(stack)
    conf = {"num_transactions": N, "seed": 17, "start": START.isoformat(), "span_days": DAYS}
    run, output = run_dag(stack, client, INGESTION, conf)
    tasks = client.task_states(INGESTION, run.run_id)
    assert run.state == "success", (tasks, output[-3000:])
    assert set(tasks.values()) == {"success"}
    assert total_offsets(stack) - before == N
    assert client.xcom(INGESTION, run.run_id, "seed_transactions")["delivered"] == N


@pytest.mark.integration
def test_2_streaming_catch_up_then_health_dag_writes_a_healthy_report(stack: Settings, client: AirflowClient) -> None:
    from shoplake.demo import _streaming_catch_up
    from shoplake.monitoring.report import reports_dir

    bronze_before = delta_rows(stack, "bronze")
    _streaming_catch_up(stack)
    assert delta_rows(stack, "bronze") - bronze_before >= N  # nothing is dropped in bronze
    assert raw_rows_in_window(stack) > 0.9 * N  # the rest is quarantined (the generator's bad records)

    latest = reports_dir(stack) / "latest.json"
    started = datetime.now(UTC)
    run, output = run_dag(stack, client, STREAMING)
    tasks = client.task_states(STREAMING, run.run_id)
    assert run.state == "success", (tasks, output[-3000:])
    report = json.loads(latest.read_text())
    assert datetime.fromisoformat(report["generated_at"]) >= started
    assert report["healthy"] is True and report["problems"] == []
    rows = {t["name"]: t["rows"] for t in report["tables"]}
    assert rows["silver"] >= raw_rows_in_window(stack) and rows["bronze"] >= rows["silver"]
    assert report["streaming"], "the report carries the streaming progress section"


@pytest.mark.integration
def test_3_dbt_builds_the_marts_and_every_test_passes(stack: Settings, client: AirflowClient) -> None:
    from shoplake.demo import warehouse_counts

    run, output = run_dag(stack, client, DBT)
    tasks = client.task_states(DBT, run.run_id)
    assert run.state == "success", (tasks, output[-3000:])
    assert set(tasks.values()) == {"success"}
    counts = client.xcom(DBT, run.run_id, "dbt_test")["counts"]
    assert counts.get("pass", 0) > 0 and counts.get("fail", 0) == counts.get("error", 0) == 0
    marts = warehouse_counts(stack)
    facts = [rows for name, rows in marts.items() if name.endswith(".fct_transactions")]
    assert facts and facts[0] >= raw_rows_in_window(stack)
    assert all(rows > 0 for name, rows in marts.items() if name.endswith((".dim_customers", ".dim_merchants")))


@pytest.fixture
def strict_precision_gate(client: AirflowClient) -> Iterator[float]:
    client.request("POST", "/variables", json={"key": "ml_min_precision", "value": "0.999"})
    try:
        yield 0.999
    finally:
        client.request("DELETE", "/variables/ml_min_precision")


@pytest.mark.integration
def test_4_ml_trains_logs_to_mlflow_and_skips_deploy_when_a_gate_fails(
    stack: Settings, client: AirflowClient, strict_precision_gate: float
) -> None:
    from shoplake.ml import registry
    from shoplake.ml.deploy import CANDIDATE_PREFIX

    mlflow = registry.client(stack)
    production_before = registry.production_version(mlflow, stack.ml.model_name)
    window = {"window_start": START.isoformat(), "window_end": (START + timedelta(days=DAYS)).isoformat()}
    run, output = run_dag(stack, client, ML, window)
    tasks = client.task_states(ML, run.run_id)
    assert run.state == "success", (tasks, output[-3000:])
    assert tasks["wait_for_dbt"] == tasks["train_model"] == tasks["evaluate_model"] == "success"
    assert tasks["deploy_model"] == "skipped"

    training = client.xcom(ML, run.run_id, "train_model")
    logged = mlflow.get_run(training["run_id"])
    assert logged.info.status == "FINISHED"
    assert {f"{CANDIDATE_PREFIX}{m}" for m in ("precision", "recall", "f1")} <= set(logged.data.metrics)
    decision = client.xcom(ML, run.run_id, "evaluate_model", "decision")
    assert decision["deploy"] is False and decision["thresholds"]["precision"] == strict_precision_gate
    assert any("precision" in reason for reason in decision["reasons"])
    assert "deploy_model will be SKIPPED" in output  # the evaluate_model task log
    production_after = registry.production_version(mlflow, stack.ml.model_name)
    assert (production_after and production_after.version) == (production_before and production_before.version)
