"""data_ingestion_pipeline: generate e-commerce transactions and deliver them to Kafka (Avro + registry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

from shoplake.airflow.defaults import deadline, default_args
from shoplake.airflow.operators import PackageTaskOperator
from shoplake.airflow.params import NUM_TRANSACTIONS_VARIABLE, ingestion_params
from shoplake.config import get_settings

DAG_ID = "data_ingestion_pipeline"
settings = get_settings()


@dag(
    dag_id=DAG_ID,
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["shoplake", "ingestion", "kafka"],
    default_args=default_args(settings),
    params=ingestion_params(settings),
    deadline=deadline(DAG_ID, timedelta(minutes=30)),
    doc_md="""
### Ingest e-commerce transactions into Kafka
Checks Kafka and the schema registry, generates `num_transactions` transactions (run conf, else Variable
`data_platform_num_transactions`, else 1000; optional `seed`, `start`, `span_days`) and produces them as
Confluent-framed Avro to `ecommerce.transactions`, then verifies the end offsets grew by exactly the delivered
count. Without `start`, a run covers the hour before it was due (no events from the future).
Invalid conf (e.g. `{"num_transactions": -5}`) is refused when the run is created. Retries regenerate the
same transactions (run key = DAG run id), which the streaming layer deduplicates.
""",
)
def data_ingestion_pipeline() -> None:
    check_kafka_health, check_schema_registry = (
        PackageTaskOperator(task_id=name, target=f"shoplake.airflow.ingestion_tasks:{name}")
        for name in ("check_kafka_health", "check_schema_registry")
    )

    @task
    def seed_transactions() -> dict[str, Any]:
        from airflow.sdk import Variable

        from shoplake.airflow.ingestion_tasks import event_window
        from shoplake.airflow.ingestion_tasks import seed_transactions as seed

        ctx = get_current_context()
        params, dag_run = ctx["params"], ctx["dag_run"]
        start, span = event_window(params.get("start"), params.get("span_days"), dag_run.run_after)
        return seed(
            settings,
            num_transactions=params.get("num_transactions"),
            variable_value=Variable.get(NUM_TRANSACTIONS_VARIABLE, default=None),
            seed=int(params.get("seed", 42)),
            start=start,
            span=span,
            run_key=f"airflow/{DAG_ID}/{dag_run.run_id}",
        )

    @task
    def verify_kafka_topic(seeded: dict[str, Any]) -> dict[str, Any]:
        from shoplake.airflow.ingestion_tasks import verify_kafka_topic as verify

        return verify(settings, seeded)

    seeded = seed_transactions()
    check_kafka_health >> check_schema_registry >> seeded
    verify_kafka_topic(seeded)


data_ingestion_pipeline()
