"""dbt_runner's pure parts: the steps and arguments it builds, the child's environment, result parsing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from shoplake.config import Settings
from shoplake.warehouse import dbt_runner as r

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"SHOPLAKE_HOME": str(tmp_path / "home"), "POSTGRES_PORT": "45999"})


def test_build_steps_run_in_the_contract_order() -> None:
    steps = r.build_steps()
    assert [s.name for s in steps] == ["deps", "seed", "run_staging", "run_marts", "test", "docs_generate"]
    assert steps[2].args == ("run", "--select", "staging")
    assert steps[3].args == ("run", "--select", "marts")


def test_full_refresh_applies_only_to_what_builds_relations() -> None:
    steps = {s.name: s.args for s in r.build_steps(r.BuildOptions(full_refresh=True, docs=False))}
    assert "docs_generate" not in steps
    assert [name for name, args in steps.items() if "--full-refresh" in args] == ["seed", "run_staging", "run_marts"]


def test_vars_are_passed_as_json_except_to_deps() -> None:
    steps = {s.name: s.args for s in r.build_steps(r.BuildOptions(extra_vars={"reporting_currency": "USD"}))}
    assert "--vars" not in steps["deps"]
    args = steps["run_marts"]
    assert json.loads(args[args.index("--vars") + 1]) == {"reporting_currency": "USD"}


def test_select_narrows_every_building_step_to_the_intersection() -> None:
    options = r.BuildOptions(docs=False, tests=False, select="+fct_transactions")
    steps = {s.name: s.args for s in r.build_steps(options)}
    assert list(steps) == ["deps", "seed", "run_staging", "run_marts"]
    assert steps["deps"] == ("deps",)
    assert steps["seed"] == ("seed", "--select", "+fct_transactions")
    assert steps["run_staging"] == ("run", "--select", "staging,+fct_transactions")
    assert steps["run_marts"] == ("run", "--select", "marts,+fct_transactions")
    tested = r.build_steps(r.BuildOptions(docs=False, select="fct_transactions"))
    assert tested[-1].args == ("test", "--select", "fct_transactions")


@pytest.mark.parametrize("select", ["", "a b", "staging,marts", "+fct_transactions\n"])
def test_a_select_that_is_not_one_selector_is_refused(select: str) -> None:
    with pytest.raises(ValueError, match="one dbt node selector"):
        r.BuildOptions(select=select)


def test_child_env_points_dbt_at_shoplake_home_and_drops_pythonpath(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/dags")
    paths = r.DbtPaths.of(settings)
    env = r.child_env(settings, paths)
    assert "PYTHONPATH" not in env
    assert env["DBT_TARGET_PATH"] == str(settings.home / "dbt" / "target")
    assert env["DBT_LOG_PATH"] == str(settings.home / "dbt" / "logs")
    assert env["DBT_PACKAGES_INSTALL_PATH"] == str(settings.home / "dbt" / "packages")
    assert env["DBT_PROFILES_DIR"] == env["DBT_PROJECT_DIR"] == str(settings.project_dir / "dbt")
    assert env["DBT_TARGET"] == settings.profile
    assert env["POSTGRES_PORT"] == "45999"
    assert "jit=off" in env["PGOPTIONS"]
    # dbt's not_in_future test reads silver's own bound: one value for both layers
    assert env["SHOPLAKE_MAX_CLOCK_SKEW_MINUTES"] == str(settings.streaming.silver.max_clock_skew_minutes) == "43200"


def test_child_command_runs_an_isolated_interpreter(settings: Settings, tmp_path: Path) -> None:
    steps = [r.DbtStep("seed", ("seed",))]
    cmd = r.child_command(r.DbtPaths.of(settings), tmp_path / "out.jsonl", steps)
    assert cmd[:3] == [sys.executable, "-I", "-c"]
    assert json.loads(cmd[-1]) == [{"name": "seed", "args": ["seed"]}]


def _run_results(*results: dict[str, Any]) -> dict[str, Any]:
    return {"results": list(results), "elapsed_time": 1.0}


MANIFEST: dict[str, Any] = {
    "nodes": {
        "test.shoplake.is_positive_stg_raw__transactions_amount_minor.abc": {
            "name": "is_positive_stg_raw__transactions_amount_minor",
            "test_metadata": {"name": "is_positive", "kwargs": {"column_name": "amount_minor"}},
            "column_name": "amount_minor",
            "attached_node": "model.shoplake.stg_raw__transactions",
        },
        "test.shoplake.source_unique_raw_transactions_transaction_id.def": {
            "name": "source_unique_raw_transactions_transaction_id",
            "test_metadata": {"name": "unique", "kwargs": {"column_name": "transaction_id"}},
            "column_name": "transaction_id",
            "attached_node": "source.shoplake.raw.transactions",
        },
        "test.shoplake.reconciles_with_agg_daily_revenue_revenue.123": {
            "name": "reconciles_with_agg_daily_revenue_revenue",
            "test_metadata": {"name": "reconciles_with", "kwargs": {"measure": "revenue"}},
            "attached_node": "model.shoplake.agg_daily_revenue",
        },
        "model.shoplake.fct_transactions": {"name": "fct_transactions"},
    }
}


def test_failed_tests_are_described_by_test_model_and_column() -> None:
    nodes = r.parse_run_results(
        _run_results(
            {"unique_id": "test.shoplake.is_positive_stg_raw__transactions_amount_minor.abc", "status": "fail",
             "failures": 2, "message": "Got 2 results, configured to fail if != 0", "execution_time": 0.3},
            {"unique_id": "test.shoplake.source_unique_raw_transactions_transaction_id.def", "status": "fail",
             "failures": 1, "message": "Got 1 result", "execution_time": 0.1},
            {"unique_id": "test.shoplake.reconciles_with_agg_daily_revenue_revenue.123", "status": "pass",
             "failures": 0, "message": None, "execution_time": 0.1},
        ),
        MANIFEST,
    )  # fmt: skip
    positive, unique, reconcile = nodes
    assert positive.failed and positive.subject == "is_positive on stg_raw__transactions.amount_minor"
    assert unique.subject == "unique on raw.transactions.transaction_id"
    assert not reconcile.failed and reconcile.subject is None
    assert positive.describe().startswith(
        "test is_positive_stg_raw__transactions_amount_minor (is_positive on stg_raw__transactions.amount_minor): "
        "FAIL - 2 failing row(s)"
    )


def test_model_errors_keep_the_database_message() -> None:
    (node,) = r.parse_run_results(
        _run_results(
            {"unique_id": "model.shoplake.fct_transactions", "status": "error", "failures": None,
             "message": 'Database Error\n  relation "raw.transactions" does not exist', "execution_time": 0.2}
        ),
        MANIFEST,
    )  # fmt: skip
    assert node.failed and node.resource_type == "model" and node.name == "fct_transactions"
    assert 'relation "raw.transactions" does not exist' in node.describe()


def test_a_step_with_a_failed_node_is_a_failed_step_even_if_dbt_said_success() -> None:
    step = r.DbtStep("test", ("test",))
    record = {
        "success": True,
        "elapsed": 2.0,
        "exception": None,
        "run_results": _run_results(
            {"unique_id": "test.shoplake.is_positive_stg_raw__transactions_amount_minor.abc", "status": "fail",
             "failures": 1, "execution_time": 0.1},
            {"unique_id": "model.shoplake.fct_transactions", "status": "success", "execution_time": 1.0},
        ),
    }  # fmt: skip
    result = r.step_result(step, record, MANIFEST)
    assert not result.success
    assert result.counts() == {"fail": 1, "success": 1}
    assert [n.name for n in result.failures] == ["is_positive_stg_raw__transactions_amount_minor"]
    report = result.failure_report()
    assert report.splitlines()[0] == "dbt step 'test' failed (dbt test)"
    assert "is_positive on stg_raw__transactions.amount_minor" in report


def test_a_step_that_never_ran_reports_dbts_exception() -> None:
    result = r.step_result(
        r.DbtStep("seed", ("seed",)),
        {"success": False, "elapsed": 0.5, "exception": "DbtProjectError: Runtime Error", "run_results": None},
        None,
    )
    assert not result.success and result.nodes == ()
    assert "DbtProjectError: Runtime Error" in result.failure_report()


def test_sample_rows_are_quoted_and_truncated() -> None:
    node = r.NodeResult(
        unique_id="test.x.y.z",
        resource_type="test",
        name="y",
        status="fail",
        message=None,
        failures=1,
        execution_time=0.1,
        sample_rows=({"transaction_id": "tx-1", "note": "n" * 500},),
    )
    sample = node.describe().splitlines()[1].strip()
    assert sample.startswith("transaction_id=tx-1, note=nnn") and sample.endswith("...")
    assert len(sample) == r.SAMPLE_WIDTH


def test_summary_counts_statuses() -> None:
    result = r.StepResult(
        "run_marts",
        ("run",),
        True,
        3.25,
        nodes=tuple(r.NodeResult(f"model.s.m{i}", "model", f"m{i}", "success", None, None, 0.1) for i in range(3)),
    )
    assert result.summary() == "run_marts: OK in 3.2s (success=3)"


def test_missing_project_is_reported_before_anything_runs(tmp_path: Path) -> None:
    shipped = Settings.from_env({}).streaming_config
    settings = Settings.from_env(
        {
            "SHOPLAKE_HOME": str(tmp_path),
            "SHOPLAKE_PROJECT_DIR": str(tmp_path / "nope"),
            "STREAMING_CONFIG": str(shipped),
        }
    )
    with pytest.raises(r.WarehouseError, match="no dbt project"):
        r.seed(settings)
    assert not (tmp_path / "dbt").exists()


def test_stale_sources_say_how_stale() -> None:
    (node,) = r.parse_run_results(
        _run_results(
            {
                "unique_id": "source.shoplake.raw.transactions",
                "status": "error",
                "max_loaded_at": "2026-11-26T10:00:00+00:00",
                "max_loaded_at_time_ago_in_s": 108000.0,
                "criteria": {
                    "warn_after": {"count": 6, "period": "hour"},
                    "error_after": {"count": 24, "period": "hour"},
                },
                "execution_time": 0.1,
            }
        )
    )
    assert node.failed and node.resource_type == "source"
    assert node.describe() == (
        "source transactions: ERROR - last loaded 30.0 h ago "
        "(max_loaded_at 2026-11-26T10:00:00+00:00; warn after 6 hour, error after 24 hour)"
    )
