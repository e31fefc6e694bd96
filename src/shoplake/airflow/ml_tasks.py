"""Task bodies of ``ml_pipeline_orchestration``: extract window -> train + out-of-time evaluation -> gate -> deploy.

The gate decision is made in ``evaluate_model`` (a branch): when it says no, ``deploy_model`` is SKIPPED
(not failed) and the task log lists every failed gate. ``deploy_model`` re-decides inside
:func:`shoplake.ml.deploy.deploy` (production may have moved meanwhile) and fails if that decision differs,
so a deployment never happens on stale evidence.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final

from shoplake.airflow.params import gate_override
from shoplake.config import Settings

log = logging.getLogger(__name__)

TRAINING_DAYS: Final = 28.0
MODEL_SEED: Final = 42


def check_mlflow(settings: Settings) -> dict[str, Any]:
    import requests

    url = f"{settings.mlflow.tracking_uri}/health"
    try:
        resp = requests.get(url, timeout=10)
    except requests.RequestException as exc:
        raise ConnectionError(f"MLflow at {settings.mlflow.tracking_uri} is unreachable: {exc}") from exc
    if resp.status_code != 200:
        raise ConnectionError(f"GET {url} answered {resp.status_code}: {resp.text[:200]}")
    return {"tracking_uri": settings.mlflow.tracking_uri, "health": resp.text.strip()}


def extract_training_data(
    settings: Settings, start: str | None = None, end: str | None = None, days: float = TRAINING_DAYS
) -> dict[str, str]:
    """The training window: given bounds, else the latest ``days`` of silver (fails clearly when it is empty)."""
    from shoplake.ml import extract

    first, last = extract.time_range(settings)
    window = extract.resolve_window(settings, start, end, default_days=days)
    return {
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "data_start": first.isoformat(),
        "data_end": last.isoformat(),
    }


def train_model(settings: Settings, window: dict[str, str], seed: int = MODEL_SEED) -> dict[str, Any]:
    from shoplake.ml import extract, workflow

    span = extract.Window(datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"]))
    from shoplake.lineage import job_run

    with job_run(settings, "ml"):
        return workflow.train_and_evaluate(settings, span, seed=seed).as_dict()


def thresholds(settings: Settings, min_precision: str | None, min_recall: str | None) -> Any:
    from shoplake.ml import gates

    return gates.GateThresholds.from_settings(
        settings,
        min_precision=gate_override("ml_min_precision", min_precision),
        min_recall=gate_override("ml_min_recall", min_recall),
    )


def evaluate_model(
    settings: Settings, training: dict[str, Any], min_precision: str | None, min_recall: str | None
) -> dict[str, Any]:
    """The deployment decision for the trained candidate, with every reason it would not be deployed."""
    from shoplake.ml import gates

    limits = thresholds(settings, min_precision, min_recall)
    production = training["production_metrics"] if training.get("production_version") else None
    decision = gates.decide(
        training["test_metrics"], production, limits, production_problem=training.get("production_problem")
    )
    out = {
        "deploy": decision.deploy,
        "gates_passed": decision.gates_passed,
        "reasons": list(decision.reasons),
        "summary": decision.summary(),
        "thresholds": {"precision": limits.min_precision, "recall": limits.min_recall, "f1": limits.min_f1},
        "test_metrics": training["test_metrics"],
        "candidate_version": training["version"],
    }
    log.info("deployment decision for version %s: %s", training["version"], decision.summary())
    return out


def deploy_model(
    settings: Settings, training: dict[str, Any], min_precision: str | None, min_recall: str | None
) -> dict[str, Any]:
    from shoplake.ml import deploy

    result = deploy.deploy(settings, training["run_id"], thresholds(settings, min_precision, min_recall))
    if not result.deployed:
        raise RuntimeError(f"version {result.version} was not deployed: {'; '.join(result.reasons)}")
    return result.as_dict()
