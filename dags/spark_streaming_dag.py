"""spark_streaming_orchestration: health of the streaming lakehouse (monitoring only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag

from shoplake.airflow.defaults import deadline, default_args
from shoplake.airflow.operators import PackageTaskOperator
from shoplake.config import get_settings

DAG_ID = "spark_streaming_orchestration"
settings = get_settings()


@dag(
    dag_id=DAG_ID,
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["shoplake", "streaming", "monitoring"],
    default_args=default_args(settings),
    deadline=deadline(DAG_ID, timedelta(minutes=30)),
    doc_md="""
### Streaming health
The streaming jobs themselves run under `shoplake stream start` (continuous) or `shoplake stream run
--once` (catch-up); this DAG checks them: the streaming config parses, every required Delta table exists,
loads and has all its data files and a commit newer than `HEALTH_MAX_TABLE_AGE_HOURS`, and every stage
reported recent progress. `generate_health_report` always runs and writes
`$SHOPLAKE_HOME/reports/streaming-health/latest.json`; it fails when the platform is unhealthy.
""",
)
def spark_streaming_orchestration() -> None:
    checks = [
        PackageTaskOperator(task_id=name, target=f"shoplake.airflow.streaming_tasks:{name}")
        for name in ("check_streaming_config", "check_delta_tables", "monitor_streaming_metrics")
    ]
    report = PackageTaskOperator(
        task_id="generate_health_report",
        target="shoplake.airflow.streaming_tasks:generate_health_report",
        trigger_rule="all_done",  # a report is written on bad days too
    )
    checks[0] >> checks[1] >> checks[2] >> report


spark_streaming_orchestration()
