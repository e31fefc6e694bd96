"""The four DAGs against the contract (``dags/README.md``): ids, schedules, task order, defaults, Params.

Parse cost is checked structurally, not with a stopwatch: each DAG file is imported in a fresh interpreter
(as the DAG processor does) and must not pull in Spark, pandas, scikit-learn, MLflow, dbt or delta-rs.
"""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
HEAVY = ("pyspark", "pandas", "sklearn", "mlflow", "dbt", "deltalake", "pyarrow", "confluent_kafka")

CONTRACT: dict[str, dict[str, Any]] = {
    "data_ingestion_pipeline": {
        "file": "data_ingestion_dag.py",
        "cron": "0 * * * *",  # @hourly
        "order": ["check_kafka_health", "check_schema_registry", "seed_transactions", "verify_kafka_topic"],
    },
    "dbt_orchestration": {
        "file": "dbt_orchestration_dag.py",
        "cron": "0 */6 * * *",
        "order": [
            "check_postgres_connection",
            "dbt_deps",
            "dbt_seed",
            "dbt_run_staging",
            "dbt_run_marts",
            "dbt_test",
            "dbt_docs_generate",
        ],
    },
    "ml_pipeline_orchestration": {
        "file": "ml_pipeline_dag.py",
        "cron": "0 0 * * 0",
        "order": [
            "check_mlflow_connection",
            "wait_for_dbt",
            "extract_training_data",
            "train_model",
            "evaluate_model",
            "deploy_model",
        ],
    },
    "spark_streaming_orchestration": {
        "file": "spark_streaming_dag.py",
        "cron": "0 0 * * *",  # @daily
        "order": [
            "check_streaming_config",
            "check_delta_tables",
            "monitor_streaming_metrics",
            "generate_health_report",
        ],
    },
}


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    from airflow.dag_processing.dagbag import DagBag

    yield DagBag(str(DAGS))
    mp.undo()


@pytest.mark.unit
def test_every_dag_imports_without_errors(bag: Any) -> None:
    assert bag.import_errors == {}
    assert set(bag.dags) == set(CONTRACT)
    for dag_id, spec in CONTRACT.items():
        assert Path(bag.dags[dag_id].fileloc).name == spec["file"]


@pytest.mark.unit
@pytest.mark.parametrize("dag_id", sorted(CONTRACT))
def test_schedule_and_task_order_match_the_contract(bag: Any, dag_id: str) -> None:
    dag = bag.dags[dag_id]
    spec = CONTRACT[dag_id]
    assert dag.timetable.expression == spec["cron"]
    assert dag.catchup is False
    order = spec["order"]
    assert sorted(dag.task_ids) == sorted(order)
    for before, after in itertools.pairwise(order):
        assert before in dag.get_task(after).upstream_task_ids, f"{before} must run right before {after}"
    assert [t.task_id for t in dag.roots] == [order[0]]
    assert [t.task_id for t in dag.leaves] == [order[-1]]


# Measured from when a run is queued (AIRFLOW_DEADLINE_SCALE=1, the default).
DEADLINES = {
    "data_ingestion_pipeline": timedelta(minutes=30),
    "dbt_orchestration": timedelta(hours=1),
    "ml_pipeline_orchestration": timedelta(hours=8),
    "spark_streaming_orchestration": timedelta(minutes=30),
}


@pytest.mark.unit
@pytest.mark.parametrize("dag_id", sorted(CONTRACT))
def test_defaults_docs_tags_retries_alerts_deadline(bag: Any, dag_id: str) -> None:
    from shoplake.airflow import alerts

    dag = bag.dags[dag_id]
    assert dag.doc_md and len(dag.doc_md.strip()) > 100
    assert "shoplake" in dag.tags and len(dag.tags) >= 2
    alert = dag.deadline[0] if isinstance(dag.deadline, list) else dag.deadline
    assert alert is not None, "every DAG has a deadline alert"
    assert type(alert.reference).__name__ == "DagRunQueuedAtDeadline"
    assert alert.interval == DEADLINES[dag_id]
    assert alert.callback.serialize()["path"] == "shoplake.airflow.alerts.deadline_missed"
    for t in dag.tasks:
        assert t.owner == "data-platform"
        assert t.retries >= 1
        assert t.retry_exponential_backoff > 0
        assert alerts.on_failure in t.on_failure_callback
        assert alerts.on_retry in t.on_retry_callback


@pytest.mark.unit
@pytest.mark.parametrize("dag_id", sorted(CONTRACT))
def test_dag_file_imports_no_heavy_modules(dag_id: str, tmp_path: Path) -> None:
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('dagfile', {str(DAGS / CONTRACT[dag_id]['file'])!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    env = {"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "airflow" in loaded  # the probe really imported the DAG file
    assert loaded.isdisjoint(HEAVY), f"heavy top-level imports: {sorted(loaded & set(HEAVY))}"


@pytest.mark.unit
@pytest.mark.parametrize(
    "conf",
    [
        {"num_transactions": -5},
        {"num_transactions": 0},
        {"num_transactions": "many"},
        {"num_transactions": 2.5},
        {"num_transactions": 10**12},
        {"seed": -1},
        {"start": "yesterday"},
    ],
)
def test_invalid_ingestion_conf_is_rejected_by_params(bag: Any, conf: dict[str, Any]) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(bag.dags["data_ingestion_pipeline"].params)
    with pytest.raises(ParamValidationError):
        params.update(conf)
        params.validate()


@pytest.mark.unit
def test_valid_and_empty_ingestion_conf_accepted(bag: Any) -> None:
    params = copy.deepcopy(bag.dags["data_ingestion_pipeline"].params)
    assert params.validate()["num_transactions"] is None  # -> Variable, else the default
    params.update({"num_transactions": 5000, "start": "2026-01-01T00:00:00Z"})
    assert params.validate()["num_transactions"] == 5000
