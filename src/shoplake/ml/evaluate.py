"""Out-of-time evaluation: a chronological split, a threshold chosen on validation, metrics on the test days.

Why: fraud models evaluated on a shuffled split look excellent because rows of one fraud episode land on
both sides (the same victim, device and minutes). Production only ever scores the future, so the split is
by event time - ``train | validation | gap | test`` - where the gap is the label delay: transactions in it
would not yet have labels when the model is built, so neither training nor threshold selection may use them.
The decision threshold is picked on the validation slice only; the test slice is touched once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from shoplake.ml.extract import Window

PRECISION_AT_K: Final = (100, 500)
SPLIT_NAMES: Final = ("train", "validation", "gap", "test")


@dataclass(frozen=True)
class Split:
    """Boundaries of the chronological split: train [start, validation), validation [validation, gap), ..."""

    start: datetime
    validation: datetime
    gap: datetime
    test: datetime
    end: datetime

    def as_params(self) -> dict[str, str]:
        return {
            "split_train_start": self.start.isoformat(),
            "split_validation_start": self.validation.isoformat(),
            "split_gap_start": self.gap.isoformat(),
            "split_test_start": self.test.isoformat(),
            "split_test_end": self.end.isoformat(),
        }

    def assign(self, event_time: pd.Series) -> npt.NDArray[np.str_]:
        """The split name of every timestamp (``""`` outside the window)."""
        edges = np.array([pd.Timestamp(x).value for x in (self.start, self.validation, self.gap, self.test, self.end)])
        nanos = event_time.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64").to_numpy()
        bins = np.searchsorted(edges, nanos, side="right")
        names = np.array(["", *SPLIT_NAMES, ""])
        return np.asarray(names[bins])


def plan_split(
    window: Window, gap: timedelta, *, validation_fraction: float = 0.15, test_fraction: float = 0.25
) -> Split:
    """Cut ``window`` into train / validation / gap / test by time; fractions are of the window's length.

    Boundaries are rounded down to whole hours so split dates are readable in the run's params.
    """
    if not (0 < validation_fraction < 1 and 0 < test_fraction < 1 and validation_fraction + test_fraction < 1):
        raise ValueError("validation_fraction and test_fraction must be in (0, 1) and sum to less than 1")
    if gap < timedelta(0):
        raise ValueError(f"gap must be >= 0, got {gap}")
    length = window.end - window.start
    test_start = _hour_floor(window.end - length * test_fraction)
    gap_start = test_start - gap
    validation_start = _hour_floor(gap_start - length * validation_fraction)
    split = Split(window.start, validation_start, gap_start, test_start, window.end)
    if not window.start < validation_start < gap_start <= test_start < window.end:
        raise ValueError(
            f"window {window.start.isoformat()}..{window.end.isoformat()} is too short for a train/validation/"
            f"gap({gap})/test split; widen it or shorten the label delay"
        )
    return split


def _hour_floor(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def choose_threshold(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """The score threshold with the best F1 on the (validation) data given; ties go to the higher threshold."""
    y = np.asarray(labels, dtype=bool)
    if not y.any() or y.all():
        raise ValueError("threshold selection needs both fraud and legitimate transactions in the validation slice")
    precision, recall, thresholds = precision_recall_curve(y, np.asarray(scores, dtype=np.float64))
    f1 = _f1(precision[:-1], recall[:-1])
    best = np.flatnonzero(f1 == f1.max())[-1]
    return float(thresholds[best])


def _f1(precision: npt.NDArray[np.float64], recall: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    denominator = precision + recall
    return np.where(denominator > 0, 2 * precision * recall / np.where(denominator > 0, denominator, 1), 0.0)


def classification_metrics(
    labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float, patterns: pd.Series | None = None
) -> dict[str, float]:
    """Precision/recall/F1 at ``threshold``, ROC AUC, average precision, precision@k, confusion, per-pattern recall."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if len(y) == 0 or not y.any() or y.all():
        raise ValueError("metrics need both fraud and legitimate transactions in the evaluated slice")
    flagged = s >= threshold
    tp = int((flagged & y).sum())
    fp = int((flagged & ~y).sum())
    fn = int((~flagged & y).sum())
    tn = int((~flagged & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn)
    out = {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "roc_auc": float(roc_auc_score(y, s)),
        "average_precision": float(average_precision_score(y, s)),
        "threshold": float(threshold),
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(fn),
        "tn": float(tn),
        "n": float(len(y)),
        "fraud_rate": float(y.mean()),
    }
    ranking = np.argsort(-s, kind="stable")
    for k in PRECISION_AT_K:
        top = ranking[: min(k, len(s))]
        out[f"precision_at_{k}"] = float(y[top].mean())
    if patterns is not None:
        names = patterns.astype(object).to_numpy()
        for name in sorted({p for p in names[y] if isinstance(p, str)}):
            mine = y & (names == name)
            out[f"recall_{name}"] = float(flagged[mine].mean())
    return out
