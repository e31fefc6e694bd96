"""ml_pipeline_orchestration: train the fraud model out of time and deploy it only when the gates pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

from shoplake.airflow.defaults import deadline, default_args
from shoplake.airflow.operators import PackageTaskOperator
from shoplake.airflow.params import training_params
from shoplake.airflow.sensors import LatestDagRunSuccessSensor
from shoplake.config import get_settings

DAG_ID = "ml_pipeline_orchestration"
settings = get_settings()


def _gate_variables() -> tuple[str | None, str | None]:
    from airflow.sdk import Variable

    return Variable.get("ml_min_precision", default=None), Variable.get("ml_min_recall", default=None)


@dag(
    dag_id=DAG_ID,
    schedule="0 0 * * 0",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["shoplake", "ml", "mlflow"],
    default_args=default_args(settings),
    params=training_params(),
    deadline=deadline(DAG_ID, timedelta(hours=8)),
    doc_md=f"""
### Train and (maybe) deploy the fraud model
Waits for a successful `dbt_orchestration` run that ended at most 12 h before this run was due, extracts the
training window from Delta (conf `window_start`/`window_end`, default the latest
`window_days` = 28 days of silver), trains a Random Forest, evaluates it out of time, and moves the
registry alias `production` only when precision >= Variable `ml_min_precision` (default
{settings.ml.min_precision}), recall >= `ml_min_recall` (default {settings.ml.min_recall}), F1 >=
{settings.ml.min_f1} and it is not worse than the current production model. Otherwise `deploy_model` is
**skipped**; the reasons are in the `evaluate_model` log and XCom.
""",
)
def ml_pipeline_orchestration() -> None:
    check_mlflow_connection = PackageTaskOperator(
        task_id="check_mlflow_connection", target="shoplake.airflow.ml_tasks:check_mlflow"
    )

    wait_for_dbt = LatestDagRunSuccessSensor(
        task_id="wait_for_dbt",
        external_dag_id="dbt_orchestration",
        max_age=timedelta(hours=12),
        poke_interval=300,
        timeout=6 * 3600,
        mode="reschedule",
    )

    @task
    def extract_training_data() -> dict[str, str]:
        from shoplake.airflow.ml_tasks import extract_training_data as extract

        params = get_current_context()["params"]
        return extract(settings, params.get("window_start"), params.get("window_end"), params["window_days"])

    @task
    def train_model(window: dict[str, str]) -> dict[str, Any]:
        from shoplake.airflow.ml_tasks import train_model as train

        return train(settings, window)

    @task.branch
    def evaluate_model(training: dict[str, Any]) -> str | None:
        from shoplake.airflow.ml_tasks import evaluate_model as evaluate

        decision = evaluate(settings, training, *_gate_variables())
        get_current_context()["ti"].xcom_push(key="decision", value=decision)  # for the UI and the demo
        if decision["deploy"]:
            return "deploy_model"
        print(f"deploy_model will be SKIPPED: {decision['summary']}")
        return None

    @task
    def deploy_model(training: dict[str, Any]) -> dict[str, Any]:
        from shoplake.airflow.ml_tasks import deploy_model as deploy

        return deploy(settings, training, *_gate_variables())

    window = extract_training_data()
    check_mlflow_connection >> wait_for_dbt >> window
    training = train_model(window)
    evaluate_model(training) >> deploy_model(training)


ml_pipeline_orchestration()
