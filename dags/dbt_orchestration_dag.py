"""dbt_orchestration: rebuild the PostgreSQL warehouse (staging -> marts), test it, generate the docs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from shoplake.airflow.defaults import deadline, default_args
from shoplake.config import get_settings

DAG_ID = "dbt_orchestration"
settings = get_settings()


def _step(task_id: str, step: str) -> Any:
    """A task running one dbt step through ``shoplake.warehouse.dbt_runner`` (isolated dbt child process)."""

    @task(task_id=task_id)
    def run() -> dict[str, Any]:
        from shoplake.airflow.dbt_tasks import run_step

        return run_step(settings, step)

    return run()


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
        current = _step(task_id, step)
        if previous is not None:
            previous >> current
        previous = current


dbt_orchestration()
