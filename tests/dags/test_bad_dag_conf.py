"""DAG run conf with wrong types, negative, huge and injection-style values is refused when the run is created.

Airflow validates a run's conf against the DAG's Params before any task is queued, so a refusal here means
no task (and so no Kafka write, Spark job or model registration) ever starts. The DAGs build their Params
with :mod:`shoplake.airflow.params` (checked against the loaded DAGs below); what JSON Schema cannot
express (NaN passes every numeric bound) is refused by the first statement of the task.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError

from shoplake.airflow.ingestion_tasks import event_window
from shoplake.airflow.params import ingestion_params, training_params
from shoplake.config import Settings

pytestmark = pytest.mark.unit

INJECTION = "1; DROP TABLE raw.transactions; --"
TRAVERSAL = "../../etc/passwd"
SETTINGS = Settings.from_env({"INGEST_MAX_TRANSACTIONS": "1000000"})


def _validated(params: ParamsDict, conf: dict[str, Any]) -> dict[str, Any]:
    params.update(conf)
    return dict(params.validate())


@pytest.mark.parametrize(
    "conf",
    [
        {"num_transactions": -1},
        {"num_transactions": 1_000_001},  # above INGEST_MAX_TRANSACTIONS
        {"num_transactions": 10**30},
        {"num_transactions": "5000"},
        {"num_transactions": INJECTION},
        {"num_transactions": True},
        {"num_transactions": [5000]},
        {"seed": -1},
        {"seed": 2**64},
        {"seed": 4.5},
        {"seed": INJECTION},
        {"start": INJECTION},
        {"start": TRAVERSAL},
        {"start": "2026-13-45T00:00:00Z"},
        {"start": "2026-01-01T25:00:00Z"},
        {"start": "2026-01-01T00:00:00"},  # no zone
        {"start": "2026-01-01T00:00:00Z\n; rm -rf /"},
        {"start": 1_767_225_600},
        {"span_days": 0},
        {"span_days": -1},
        {"span_days": 10**9},
        {"span_days": float("inf")},
        {"span_days": "1"},
    ],
    ids=repr,
)
def test_bad_ingestion_conf_is_refused(conf: dict[str, Any]) -> None:
    with pytest.raises(ParamValidationError):
        _validated(ParamsDict(ingestion_params(SETTINGS)), conf)


@pytest.mark.parametrize(
    "conf",
    [
        {"window_days": 0},
        {"window_days": -3},
        {"window_days": 10**6},
        {"window_days": "28"},
        {"window_days": True},
        {"window_days": float("-inf")},
        {"window_start": INJECTION},
        {"window_start": TRAVERSAL},
        {"window_end": "2026-02-30x"},
        {"window_end": "2026-00-10"},
        {"window_start": 20260101},
    ],
    ids=repr,
)
def test_bad_training_conf_is_refused(conf: dict[str, Any]) -> None:
    with pytest.raises(ParamValidationError):
        _validated(ParamsDict(training_params()), conf)


def test_good_conf_still_passes() -> None:
    got = _validated(
        ParamsDict(ingestion_params(SETTINGS)),
        {"num_transactions": 1_000_000, "seed": 2**63 - 1, "start": "2026-01-31T23:59:59.5+02:00", "span_days": 0.5},
    )
    assert got["num_transactions"] == 1_000_000
    window = _validated(ParamsDict(training_params()), {"window_start": "2026-01-01", "window_end": "2026-02-01T00:00"})
    assert window["window_days"] == 28


@pytest.mark.parametrize("span", [float("nan"), float("inf"), "7"])
def test_non_finite_span_is_refused_by_the_task_before_it_produces(span: Any) -> None:
    """NaN satisfies JSON Schema's bounds (json.loads accepts it in ``dags trigger --conf``)."""
    with pytest.raises(ValueError, match="finite"):
        event_window(None, span, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def test_the_dags_use_these_params(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Params checked above are the ones the loaded DAGs carry (no drift between helper and DAG)."""
    from pathlib import Path

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(Path(__file__).resolve().parents[2] / "dags"))
    assert set(bag.dags["data_ingestion_pipeline"].params) == set(ingestion_params(SETTINGS))
    assert set(bag.dags["ml_pipeline_orchestration"].params) == set(training_params())
    seed = bag.dags["data_ingestion_pipeline"].params.get_param("seed").schema
    assert seed["maximum"] == 2**63 - 1
