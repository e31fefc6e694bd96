"""dbt_orchestration: rebuild the PostgreSQL warehouse (staging -> marts), test it, generate the docs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag

from shoplake.airflow.defaults import deadline, default_args
from shoplake.airflow.operators import DbtStepOperator
from shoplake.config import get_settings

DAG_ID = "dbt_orchestration"
settings = get_settings()


@dag(
    dag_id=DAG_ID,
    schedule="0 */6 * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["shoplake", "dbt", "warehouse"],
    default_args=default_args(settings),
    deadline=deadline(DAG_ID, timedelta(hours=1)),
    doc_md="""
### Transform the warehouse with dbt
`raw.*` (written by the streaming warehouse sink) -> staging views -> incremental marts, then every dbt
test and the docs site. Each step is its own task so a failure points at the step; the task log carries
dbt's failing nodes with sample rows. dbt runs in an isolated child process (it must never import this
folder's `dbt_orchestration_dag.py` as a plugin).
""",
)
def dbt_orchestration() -> None:
    steps = [
        ("check_postgres_connection", "check_connection"),
        ("dbt_deps", "deps"),
        ("dbt_seed", "seed"),
        ("dbt_run_staging", "run_staging"),
        ("dbt_run_marts", "run_marts"),
        ("dbt_test", "run_tests"),
        ("dbt_docs_generate", "docs_generate"),
    ]
    previous = None
    for task_id, step in steps:
        current = DbtStepOperator(task_id=task_id, step=step)
        if previous is not None:
            previous >> current
        previous = current


dbt_orchestration()
