"""Deployment gates: pure decisions over metrics, so the rule the DAG branches on is unit-testable.

A candidate may replace production only when (1) its out-of-time test metrics clear every absolute gate
and (2) it is not worse than the current production model *measured on the same test window* - comparing
against production's own old numbers would compare different weeks of fraud. Every refusal carries a
human-readable reason, recorded on the model version and the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from shoplake.config import Settings

# Metrics compared against production; a candidate must match or beat production on each (within tolerance).
COMPARED_METRICS: Final = ("f1", "average_precision")


@dataclass(frozen=True)
class GateThresholds:
    """Minimum test metrics for deployment (settings, overridable by Airflow Variables)."""

    min_precision: float
    min_recall: float
    min_f1: float
    tolerance: float = 0.0  # how much worse than production a candidate may be and still count as "not worse"

    def __post_init__(self) -> None:
        for name in ("min_precision", "min_recall", "min_f1"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if not 0.0 <= self.tolerance < 1.0:
            raise ValueError(f"tolerance must be in [0, 1), got {self.tolerance!r}")

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        min_precision: float | None = None,
        min_recall: float | None = None,
        min_f1: float | None = None,
    ) -> GateThresholds:
        """Settings' gates with optional overrides (the DAG passes its Airflow Variables here)."""
        return cls(
            min_precision=settings.ml.min_precision if min_precision is None else float(min_precision),
            min_recall=settings.ml.min_recall if min_recall is None else float(min_recall),
            min_f1=settings.ml.min_f1 if min_f1 is None else float(min_f1),
        )


@dataclass(frozen=True)
class GateDecision:
    """Whether to deploy and why; ``reasons`` lists every failed check (empty when deploying)."""

    deploy: bool
    gates_passed: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        return "deploy: all gates passed" if self.deploy else "not deployed: " + "; ".join(self.reasons)


def check_gates(metrics: dict[str, float], thresholds: GateThresholds) -> list[str]:
    """Reasons the candidate's test metrics miss the absolute gates (empty list = all pass)."""
    failures = []
    for metric, minimum in (
        ("precision", thresholds.min_precision),
        ("recall", thresholds.min_recall),
        ("f1", thresholds.min_f1),
    ):
        if metric not in metrics:
            failures.append(f"{metric} missing from the evaluation")
        elif not metrics[metric] >= minimum:
            failures.append(f"{metric} {metrics[metric]:.4f} < required {minimum:.4f}")
    return failures


def compare_with_production(candidate: dict[str, float], production: dict[str, float], tolerance: float) -> list[str]:
    """Reasons the candidate is worse than production on the same test window (empty = not worse)."""
    worse = []
    for metric in COMPARED_METRICS:
        if metric not in candidate or metric not in production:
            worse.append(f"{metric} not available for both candidate and production")
        elif candidate[metric] < production[metric] - tolerance:
            worse.append(
                f"{metric} {candidate[metric]:.4f} is worse than production's {production[metric]:.4f} "
                "on the same test window"
            )
    return worse


def decide(
    candidate: dict[str, float],
    production: dict[str, float] | None,
    thresholds: GateThresholds,
    *,
    production_problem: str | None = None,
) -> GateDecision:
    """The deployment decision.

    ``production`` is production's metrics on the candidate's test window, or None when there is no
    production model. ``production_problem`` says why production exists but could not be evaluated on the
    window; the candidate is then refused, because "not worse" cannot be shown.
    """
    reasons = check_gates(candidate, thresholds)
    gates_passed = not reasons
    if production_problem:
        reasons.append(f"cannot compare with production: {production_problem}")
    elif production is not None:
        reasons.extend(compare_with_production(candidate, production, thresholds.tolerance))
    return GateDecision(deploy=not reasons, gates_passed=gates_passed, reasons=tuple(reasons))
