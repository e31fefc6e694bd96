"""Pure logic of the DAG helpers: parameter precedence, gate Variables, the sensor's recency, the deadline alert.

The alert callbacks themselves are tested with the notifier in ``test_notify.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shoplake.airflow.params import DEFAULT_NUM_TRANSACTIONS, gate_override, resolve_num_transactions
from shoplake.airflow.sensors import is_recent
from shoplake.config import Settings

SETTINGS = Settings.from_env({"INGEST_MAX_TRANSACTIONS": "1000000"})


@pytest.mark.unit
def test_num_transactions_conf_then_variable_then_default() -> None:
    assert resolve_num_transactions(SETTINGS, 5000, "20") == 5000
    assert resolve_num_transactions(SETTINGS, None, " 20 ") == 20
    assert resolve_num_transactions(SETTINGS, None, None) == DEFAULT_NUM_TRANSACTIONS
    assert resolve_num_transactions(SETTINGS, None, "") == DEFAULT_NUM_TRANSACTIONS


@pytest.mark.unit
@pytest.mark.parametrize("bad", ["abc", "0", "-3", "2000000", "1.5"])
def test_bad_num_transactions_variable_is_an_error_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="data_platform_num_transactions"):
        resolve_num_transactions(SETTINGS, None, bad)


@pytest.mark.unit
def test_gate_variables() -> None:
    assert gate_override("ml_min_recall", None) is None
    assert gate_override("ml_min_recall", "0.65") == 0.65
    for bad in ("high", "1.5", "-0.1"):
        with pytest.raises(ValueError, match="ml_min_recall"):
            gate_override("ml_min_recall", bad)


@pytest.mark.unit
def test_sensor_recency_window() -> None:
    due = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    age = timedelta(hours=12)
    assert is_recent("2026-02-28T13:00:00+00:00", due, age)
    assert is_recent("2026-03-01T00:05:00Z", due, age)  # ended after the run was due: fine
    assert not is_recent("2026-02-28T11:59:00+00:00", due, age)
    assert not is_recent(None, due, age)


@pytest.mark.unit
def test_deadline_alert_is_measured_from_queueing_with_our_callback() -> None:
    from shoplake.airflow.defaults import deadline

    alert = deadline("dbt_orchestration", timedelta(hours=1))
    assert alert is not None
    assert type(alert.reference).__name__ == "DagRunQueuedAtDeadline"
    assert alert.interval == timedelta(hours=1)
    assert alert.callback.serialize()["path"] == "shoplake.airflow.alerts.deadline_missed"
    assert alert.callback.serialize()["kwargs"] == {"dag_id": "dbt_orchestration"}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("scale", "expected"), [("2", timedelta(hours=2)), ("0.001", timedelta(seconds=3.6)), ("0", None)]
)
def test_deadline_scale_multiplies_every_deadline_and_zero_removes_it(
    monkeypatch: pytest.MonkeyPatch, scale: str, expected: timedelta | None
) -> None:
    from shoplake.airflow import defaults
    from shoplake.config import Settings

    monkeypatch.setenv("AIRFLOW_DEADLINE_SCALE", scale)
    monkeypatch.setattr(defaults, "get_settings", Settings.from_env)
    alert = defaults.deadline("dbt_orchestration", timedelta(hours=1))
    assert (alert.interval if alert else None) == expected


@pytest.mark.unit
@pytest.mark.parametrize("scale", ["-1", "1001", "soon"])
def test_deadline_scale_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, scale: str) -> None:
    from shoplake.config import ConfigError, Settings

    monkeypatch.setenv("AIRFLOW_DEADLINE_SCALE", scale)
    with pytest.raises(ConfigError, match="AIRFLOW_DEADLINE_SCALE"):
        Settings.from_env()
