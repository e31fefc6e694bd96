"""Split logic, metrics, threshold selection on validation only, and the deployment gates."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shoplake.config import Settings
from shoplake.ml import evaluate, gates, workflow
from shoplake.ml.extract import Window
from shoplake.ml.features import FEATURE_COLUMNS

START = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(days=20))


# ---- split ------------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_split_is_chronological_with_the_gap_before_test() -> None:
    split = evaluate.plan_split(WINDOW, gap=timedelta(days=3))
    assert split.start < split.validation < split.gap < split.test < split.end
    assert split.test - split.gap == timedelta(days=3)
    assert split.end - split.test == timedelta(days=5)  # 25 % of 20 days
    times = pd.Series(pd.to_datetime([split.start, split.validation, split.gap, split.test, split.end], utc=True))
    shifted = times - pd.Timedelta(milliseconds=1)
    assert list(split.assign(times)) == ["train", "validation", "gap", "test", ""]
    assert list(split.assign(shifted)) == ["", "train", "validation", "gap", "test"]


@pytest.mark.unit
def test_every_training_row_precedes_every_validation_and_test_row() -> None:
    split = evaluate.plan_split(WINDOW, gap=timedelta(days=2))
    rng = np.random.default_rng(0)
    times = pd.Series(pd.to_datetime(START) + pd.to_timedelta(rng.uniform(0, 20 * 86400, 5000), unit="s"))
    part = split.assign(times)
    assert times[part == "train"].max() < times[part == "validation"].min()
    assert times[part == "validation"].max() < times[part == "gap"].min()
    assert times[part == "gap"].max() < times[part == "test"].min()
    assert (times[part == "test"].min() - times[part == "validation"].max()) >= pd.Timedelta(days=2)


@pytest.mark.unit
def test_split_rejects_windows_too_short_for_the_gap() -> None:
    with pytest.raises(ValueError, match="too short"):
        evaluate.plan_split(Window(START, START + timedelta(days=2)), gap=timedelta(days=3))
    with pytest.raises(ValueError, match="fraction"):
        evaluate.plan_split(WINDOW, gap=timedelta(0), validation_fraction=0.6, test_fraction=0.5)


# ---- metrics ----------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_metrics_at_threshold_confusion_and_per_pattern_recall() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    scores = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.05, 0.6])
    patterns = pd.Series(["a", "b", "b", None, None, None, None, "a"])
    m = evaluate.classification_metrics(labels, scores, 0.5, patterns)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 1, 1, 3)
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(0.75)
    assert m["recall_a"] == 1.0
    assert m["recall_b"] == 0.5
    assert m["precision_at_100"] == pytest.approx(4 / 8)  # k larger than the slice: all rows


@pytest.mark.unit
def test_threshold_maximises_f1_on_the_data_given() -> None:
    labels = np.array([0, 0, 0, 1, 1, 0, 1, 1], dtype=bool)
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.9])
    threshold = evaluate.choose_threshold(labels, scores)
    assert threshold == pytest.approx(0.4)
    with pytest.raises(ValueError, match="both"):
        evaluate.choose_threshold(np.zeros(3, dtype=bool), np.ones(3))


@dataclass
class _ScoreColumnModel:
    """A stand-in model whose fraud probability is one of the feature columns."""

    classes_: tuple[bool, bool] = (False, True)

    def predict_proba(self, features: pd.DataFrame) -> Any:
        p = features["amount_usd_log"].to_numpy()
        return np.column_stack([1 - p, p])


@pytest.mark.unit
def test_threshold_is_chosen_on_validation_never_on_test() -> None:
    rng = np.random.default_rng(1)
    n = 400
    features = pd.DataFrame({c: np.zeros(n) for c in FEATURE_COLUMNS})
    features["amount_usd_log"] = rng.uniform(0, 1, n)
    labels = features["amount_usd_log"].to_numpy() > 0.6
    part = np.array(["validation"] * 200 + ["test"] * 200)
    patterns = pd.Series(["x" if fraud else None for fraud in labels])
    first = workflow._evaluate(_ScoreColumnModel(), features, labels, part, patterns)
    # Scramble the test labels: the threshold must not move; the test metrics must.
    scrambled = labels.copy()
    scrambled[200:] = rng.permutation(scrambled[200:])
    second = workflow._evaluate(_ScoreColumnModel(), features, scrambled, part, patterns)
    assert first.threshold == second.threshold
    assert first.test["f1"] != second.test["f1"]
    assert first.test["threshold"] == first.threshold


# ---- gates ------------------------------------------------------------------------------------------------
GOOD = {"precision": 0.95, "recall": 0.9, "f1": 0.92, "average_precision": 0.97}
THRESHOLDS = gates.GateThresholds(min_precision=0.8, min_recall=0.7, min_f1=0.75)


@pytest.mark.unit
def test_all_gates_pass_without_production() -> None:
    decision = gates.decide(GOOD, None, THRESHOLDS)
    assert decision.deploy and decision.gates_passed and decision.reasons == ()


@pytest.mark.unit
@pytest.mark.parametrize("metric", ["precision", "recall", "f1"])
def test_each_gate_can_fail_alone(metric: str) -> None:
    decision = gates.decide(GOOD | {metric: 0.5}, None, THRESHOLDS)
    assert not decision.deploy and not decision.gates_passed
    assert len(decision.reasons) == 1 and decision.reasons[0].startswith(metric)


@pytest.mark.unit
def test_a_missing_metric_fails_the_gate() -> None:
    decision = gates.decide({"precision": 0.9, "recall": 0.9}, None, THRESHOLDS)
    assert not decision.deploy and "f1 missing" in decision.summary()


@pytest.mark.unit
def test_not_worse_than_production_on_the_same_window() -> None:
    production = GOOD | {"f1": 0.93}
    worse = gates.decide(GOOD, production, THRESHOLDS)
    assert worse.gates_passed and not worse.deploy
    assert "worse than production" in worse.reasons[0]
    assert gates.decide(GOOD, GOOD, THRESHOLDS).deploy  # equal is not worse
    assert gates.decide(GOOD | {"f1": 0.95}, production, THRESHOLDS).deploy
    assert gates.decide(GOOD, production, replace(THRESHOLDS, tolerance=0.02)).deploy


@pytest.mark.unit
def test_production_that_cannot_be_evaluated_blocks_deployment() -> None:
    decision = gates.decide(GOOD, None, THRESHOLDS, production_problem="model failed to load")
    assert decision.gates_passed and not decision.deploy
    assert "cannot compare with production" in decision.reasons[0]


@pytest.mark.unit
def test_thresholds_come_from_settings_with_airflow_overrides() -> None:
    settings = Settings.from_env({"ML_MIN_PRECISION": "0.85", "ML_MIN_RECALL": "0.6"})
    assert gates.GateThresholds.from_settings(settings) == gates.GateThresholds(0.85, 0.6, 0.75)
    overridden = gates.GateThresholds.from_settings(settings, min_precision=0.9, min_recall=None, min_f1=0.5)
    assert overridden == gates.GateThresholds(0.9, 0.6, 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        gates.GateThresholds(1.5, 0.5, 0.5)
