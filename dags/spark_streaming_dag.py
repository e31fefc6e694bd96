"""spark_streaming_orchestration: health of the streaming lakehouse (monitoring only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from shoplake.airflow.defaults import deadline, default_args
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
    @task
    def check_streaming_config() -> dict[str, Any]:
        from shoplake.airflow.streaming_tasks import check_streaming_config as check

        return check(settings)

    @task
    def check_delta_tables() -> list[dict[str, Any]]:
        from shoplake.airflow.streaming_tasks import check_delta_tables as check

        return check(settings)

    @task
    def monitor_streaming_metrics() -> dict[str, Any]:
        from shoplake.airflow.streaming_tasks import monitor_streaming_metrics as monitor

        return monitor(settings)

    @task(trigger_rule="all_done")
    def generate_health_report() -> dict[str, Any]:
        from shoplake.airflow.streaming_tasks import generate_health_report as report

        return report(settings)

    check_streaming_config() >> check_delta_tables() >> monitor_streaming_metrics() >> generate_health_report()


spark_streaming_orchestration()
