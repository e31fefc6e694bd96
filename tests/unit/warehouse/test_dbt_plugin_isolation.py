"""dbt's plugin loader must never import the DAG file ``dbt_orchestration_dag.py`` (see dbt_runner's docstring).

The first test is the control: plain ``dbt parse`` with the dags folder on PYTHONPATH does import it, so
the hazard is real and the marker detects it. The second runs the same parse through dbt_runner with the
dags folder on PYTHONPATH, on this process's sys.path and as the working directory (all three ways an
Airflow worker exposes it) and requires the marker to stay absent. No database is touched (parse only).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.warehouse import dbt_runner

pytestmark = pytest.mark.unit

DAG_FILE = """\
import os, pathlib
pathlib.Path(os.environ["SHOPLAKE_DAG_IMPORT_MARKER"]).write_text("imported by " + __name__)
"""


@pytest.fixture
def dags_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "dbt_orchestration_dag.py").write_text(DAG_FILE)
    monkeypatch.setenv("SHOPLAKE_DAG_IMPORT_MARKER", str(tmp_path / "marker"))
    monkeypatch.setenv("PYTHONPATH", str(dags))
    monkeypatch.syspath_prepend(str(dags))
    monkeypatch.chdir(dags)
    return dags


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Port 1: parse needs no connection, and nothing may accidentally reach a real database.
    return Settings.from_env({"SHOPLAKE_HOME": str(tmp_path / "home"), "POSTGRES_PORT": "1"})


def test_control_plain_dbt_imports_the_dag_file(dags_dir: Path, settings: Settings, tmp_path: Path) -> None:
    paths = dbt_runner.DbtPaths.of(settings)
    env = {
        **os.environ,
        **{k: v for k, v in dbt_runner.child_env(settings, paths).items() if k.startswith(("DBT_", "SHOPLAKE_"))},
    }
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run([str(dbt), "parse"], cwd=dags_dir, env=env, check=True, capture_output=True)
    assert (tmp_path / "marker").read_text() == "imported by dbt_orchestration_dag"


def test_dbt_runner_never_imports_the_dag_file(dags_dir: Path, settings: Settings, tmp_path: Path) -> None:
    result = dbt_runner.parse(settings)
    assert result.success
    assert (settings.home / "dbt" / "target" / "manifest.json").is_file()
    assert not (tmp_path / "marker").exists()
