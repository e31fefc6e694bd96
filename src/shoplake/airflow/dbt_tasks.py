"""Task bodies of ``dbt_orchestration``: one dbt step each, failing the task with dbt's own report.

``dbt_runner`` already raises :class:`~shoplake.warehouse.dbt_runner.DbtStepError` for a failed step; the
task returns the step's summary and per-status node counts so the UI (XCom) shows e.g. ``pass=110``.
"""

from __future__ import annotations

from typing import Any

from shoplake.config import Settings

STEPS = ("check_connection", "deps", "seed", "run_staging", "run_marts", "run_tests", "docs_generate")


def run_step(settings: Settings, step: str) -> dict[str, Any]:
    from shoplake.warehouse import dbt_runner

    if step not in STEPS:
        raise ValueError(f"unknown dbt step {step!r}; expected one of {STEPS}")
    result = getattr(dbt_runner, step)(settings)
    return {
        "step": result.step,
        "success": result.success,
        "seconds": round(result.elapsed, 2),
        "counts": result.counts(),
        "summary": result.summary(),
    }
