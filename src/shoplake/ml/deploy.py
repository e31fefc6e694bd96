"""Gated deployment: move ``@production`` to a candidate version only when :func:`gates.decide` says so.

The decision is re-made from what the training run recorded (its test metrics and production's metrics
on the same window), with the thresholds given *now* - so the DAG can pass Airflow Variables at deploy time.
If production moved since the run compared against it, the comparison is stale and the candidate is
refused. Whatever happens, the decision and its reasons are written as tags on the version and the run, and
a refused candidate never touches the alias; older versions stay in the registry, retrievable by number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

from shoplake.config import Settings
from shoplake.ml import gates, registry

VERSION_TAG: Final = "registered_version"
COMPARED_TAG: Final = "compared_production_version"
PROBLEM_TAG: Final = "production_problem"
CANDIDATE_PREFIX: Final = "test_"
PRODUCTION_PREFIX: Final = "production_test_"


@dataclass(frozen=True)
class DeployResult:
    """Outcome of a deployment attempt; ``deployed`` is what the DAG branches on."""

    deployed: bool
    model_name: str
    version: str
    run_id: str
    production_before: str | None
    production_after: str | None
    gates_passed: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        return out


def _metrics(all_metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {k[len(prefix) :]: v for k, v in all_metrics.items() if k.startswith(prefix)}


def deploy(settings: Settings, run_id: str, thresholds: gates.GateThresholds) -> DeployResult:
    """Decide on the model version registered by ``run_id`` and move ``@production`` if it qualifies."""
    client = registry.client(settings)
    run = client.get_run(run_id)
    tags = run.data.tags
    if VERSION_TAG not in tags:
        raise ValueError(f"run {run_id} registered no model version (tag {VERSION_TAG!r} missing)")
    version = tags[VERSION_TAG]
    metrics = dict(run.data.metrics)
    candidate = _metrics(metrics, CANDIDATE_PREFIX)
    compared = tags.get(COMPARED_TAG) or None
    current = registry.production_version(client, settings.ml.model_name)
    before = str(current.version) if current is not None else None

    if before == version:
        return DeployResult(True, settings.ml.model_name, version, run_id, before, before, True, (), candidate)
    decision = gates.decide(
        candidate,
        _metrics(metrics, PRODUCTION_PREFIX) if compared else None,
        thresholds,
        production_problem=tags.get(PROBLEM_TAG) or None,
    )
    reasons = list(decision.reasons)
    if before != compared:
        reasons.append(
            f"production moved from version {compared or 'none'} to {before or 'none'} since this run was "
            "evaluated; re-run training to compare on the same window"
        )
    deployed = not reasons
    if deployed:
        client.set_registered_model_alias(settings.ml.model_name, registry.PRODUCTION_ALIAS, version)
    verdict = "deployed" if deployed else "rejected"
    why = "; ".join(reasons) if reasons else "all gates passed and not worse than production"
    gate_text = f"precision>={thresholds.min_precision} recall>={thresholds.min_recall} f1>={thresholds.min_f1}"
    for key, value in (("deployment_decision", verdict), ("deployment_reasons", why), ("deployment_gates", gate_text)):
        client.set_model_version_tag(settings.ml.model_name, version, key, value)
        client.set_tag(run_id, key, value)
    return DeployResult(
        deployed=deployed,
        model_name=settings.ml.model_name,
        version=version,
        run_id=run_id,
        production_before=before,
        production_after=version if deployed else before,
        gates_passed=decision.gates_passed,
        reasons=tuple(reasons),
        metrics=candidate,
    )
