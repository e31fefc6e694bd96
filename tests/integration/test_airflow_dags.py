"""The ingestion DAG run by the real Airflow scheduler against the real local stack.

Airflow comes from the session fixture ``airflow`` (conftest). Runs are created and awaited through the
REST API, as the UI and the demo do.
"""

from __future__ import annotations

import pytest

from shoplake.airflow.rest import AirflowApiError, AirflowClient
from shoplake.config import Settings

DAG = "data_ingestion_pipeline"
RUN_TIMEOUT = 900.0


def _total_offsets(settings: Settings) -> int:
    from shoplake.ingestion.topics import ensure_topic
    from shoplake.ingestion.verify import end_offsets

    ensure_topic(settings)
    return sum(end_offsets(settings).values())


@pytest.mark.integration
def test_ingestion_dag_delivers_exactly_the_requested_transactions(stack: Settings, airflow: AirflowClient) -> None:
    before = _total_offsets(stack)
    run = airflow.trigger_and_wait(
        DAG, {"num_transactions": 250, "seed": 7, "start": "2026-03-01T00:00:00Z"}, RUN_TIMEOUT
    )
    tasks = airflow.task_states(DAG, run.run_id)
    assert run.state == "success", tasks
    assert set(tasks.values()) == {"success"}
    assert _total_offsets(stack) - before == 250
    seeded = airflow.xcom(DAG, run.run_id, "seed_transactions")
    assert seeded["delivered"] == 250 and seeded["failed"] == 0
    verified = airflow.xcom(DAG, run.run_id, "verify_kafka_topic")
    assert sum(int(n) for n in verified["growth"].values()) == 250


@pytest.mark.integration
@pytest.mark.parametrize("conf", [{"num_transactions": -5}, {"num_transactions": "lots"}])
def test_invalid_conf_is_refused_before_any_task(
    stack: Settings, airflow: AirflowClient, conf: dict[str, object]
) -> None:
    runs_before = airflow.request("GET", f"/dags/{DAG}/dagRuns", params={"limit": 1})["total_entries"]
    offsets_before = _total_offsets(stack)
    with pytest.raises(AirflowApiError) as refused:
        airflow.trigger(DAG, conf)
    assert refused.value.status == 400
    assert "num_transactions" in str(refused.value)
    assert airflow.request("GET", f"/dags/{DAG}/dagRuns", params={"limit": 1})["total_entries"] == runs_before
    assert _total_offsets(stack) == offsets_before
