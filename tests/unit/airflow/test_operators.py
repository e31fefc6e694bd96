"""The custom operators: what they refuse at DAG-parse time and what they run.

That they import nothing heavy is checked with the DAG files that use them (tests/dags/test_dag_integrity.py).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shoplake.airflow.dbt_tasks import STEPS
from shoplake.airflow.operators import DbtStepOperator, DeltaTablesHealthySensor, PackageTaskOperator, resolve
from shoplake.config import get_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("SHOPLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DELTA_BASE_PATH", str(tmp_path / "delta"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.mark.unit
@pytest.mark.parametrize("bad", ["os:system", "shoplake.airflow.streaming_tasks", "shoplake..x:f", "shoplake.x:F()"])
def test_package_task_refuses_targets_outside_the_package(bad: str) -> None:
    with pytest.raises(ValueError, match="expected 'shoplake"):
        PackageTaskOperator(task_id="t", target=bad)


@pytest.mark.unit
def test_package_task_runs_the_function_with_the_settings(env: Path) -> None:
    op = PackageTaskOperator(
        task_id="check_streaming_config", target="shoplake.airflow.streaming_tasks:check_streaming_config"
    )
    result = op.execute({})
    assert result["path"] == str(get_settings().streaming_config)
    assert result["progress_log"].startswith(str(env / "home"))  # computed from this process's settings
    with pytest.raises(ValueError, match="no function 'nope'"):
        resolve("shoplake.airflow.streaming_tasks:nope")


@pytest.mark.unit
def test_dbt_step_operator_knows_every_step_and_refuses_others() -> None:
    assert [DbtStepOperator(task_id=f"t{i}", step=s).step for i, s in enumerate(STEPS)] == list(STEPS)
    with pytest.raises(ValueError, match="unknown dbt step 'run_everything'"):
        DbtStepOperator(task_id="t", step="run_everything")


@pytest.mark.unit
def test_delta_sensor_waits_for_missing_tables_and_passes_when_all_are_healthy(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sensor = DeltaTablesHealthySensor(task_id="wait_for_delta", poke_interval=60, timeout=600)
    assert sensor.mode == "reschedule"
    assert sensor.poke({}) is False  # an empty DELTA_BASE_PATH: the required tables do not exist yet
    seen: dict[str, Any] = {}

    def healthy(cfg: Any, **kw: Any) -> list[Any]:
        seen.update(kw)
        return [SimpleNamespace(name="silver", status="OK", detail="", healthy=True)]

    monkeypatch.setattr("shoplake.monitoring.delta_health.check_tables", healthy)
    assert sensor.poke({}) is True
    assert seen["max_age"].total_seconds() == get_settings().health.max_table_age_hours * 3600
