"""Task bodies of ``dbt_orchestration``: one dbt step each, failing the task with dbt's own report.

``dbt_runner`` already raises :class:`~shoplake.warehouse.dbt_runner.DbtStepError` for a failed step; the
task returns the step's summary and per-status node counts so the UI (XCom) shows e.g. ``pass=110``.
``dbt_run_marts`` first runs the data-quality audit (:func:`shoplake.quality.audit.publish_gate`): marts
are the published layer, so bad silver/raw data stops there, with an alert, before any mart changes.
"""

from __future__ import annotations

from typing import Any

from shoplake.config import Settings

PUBLISH_STEP = "run_marts"  # the marts are what the warehouse publishes; staging are views over raw
STEPS = ("check_connection", "deps", "seed", "run_staging", "run_marts", "run_tests", "docs_generate")


def run_step(settings: Settings, step: str) -> dict[str, Any]:
    from shoplake.warehouse import dbt_runner

    if step not in STEPS:
        raise ValueError(f"unknown dbt step {step!r}; expected one of {STEPS}")
    if step == PUBLISH_STEP:
        _audit_before_publishing(settings)
    result = getattr(dbt_runner, step)(settings)
    return {
        "step": result.step,
        "success": result.success,
        "seconds": round(result.elapsed, 2),
        "counts": result.counts(),
        "summary": result.summary(),
    }


def _audit_before_publishing(settings: Settings) -> None:
    """Write-audit-publish: audit silver and raw.* first; a failed check alerts and raises DataQualityError."""
    from datetime import UTC, datetime

    from shoplake.pipeline.config import load_streaming_config
    from shoplake.quality.audit import publish_gate

    publish_gate(settings, load_streaming_config(settings), datetime.now(UTC), caller="dbt_orchestration")
