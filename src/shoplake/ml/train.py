"""The model: a preprocessing + RandomForest scikit-learn Pipeline, seeded and class-weighted.

Why these choices: a forest needs no scaling, so preprocessing is only "numbers through, categories to
ordinal codes" (unknown categories at scoring time become -1 instead of failing). ``balanced_subsample``
re-weights the ~2 % fraud class per tree. ``max_samples`` bootstraps a fraction of the training rows per tree:
on a two-core machine it is what keeps a million-row fit inside the time budget, and with hundreds of
thousands of rows per fraction the trees lose almost nothing. The pipeline holds only scikit-learn objects,
so a saved model loads anywhere without this package installed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from shoplake.ml.features import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES


@dataclass(frozen=True)
class ModelParams:
    """Hyper-parameters of the forest (logged as run params)."""

    n_estimators: int = 80
    max_depth: int = 16
    min_samples_leaf: int = 5
    max_samples: float = 0.15
    max_features: str = "sqrt"
    class_weight: str = "balanced_subsample"
    n_jobs: int = 2

    def __post_init__(self) -> None:
        if self.n_estimators < 1 or self.max_depth < 1 or self.min_samples_leaf < 1:
            raise ValueError("n_estimators, max_depth and min_samples_leaf must be >= 1")
        if not 0 < self.max_samples <= 1:
            raise ValueError("max_samples must be a fraction in (0, 1]")
        if self.class_weight not in ("balanced", "balanced_subsample"):
            raise ValueError("class_weight must be 'balanced' or 'balanced_subsample'")

    def as_params(self) -> dict[str, str]:
        return {f"rf_{k}": str(v) for k, v in asdict(self).items()}


def build_pipeline(params: ModelParams, seed: int) -> Pipeline:
    """An unfitted preprocessing + forest pipeline."""
    preprocess = ColumnTransformer(
        [
            ("numeric", "passthrough", list(NUMERIC_FEATURES)),
            (
                "categorical",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
                list(CATEGORICAL_FEATURES),
            ),
        ],
        verbose_feature_names_out=False,
    )
    forest = RandomForestClassifier(
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        min_samples_leaf=params.min_samples_leaf,
        max_samples=params.max_samples,
        max_features=params.max_features,
        class_weight=params.class_weight,
        n_jobs=params.n_jobs,
        random_state=seed,
    )
    return Pipeline([("preprocess", preprocess), ("forest", forest)])


def fit(features: pd.DataFrame, labels: npt.ArrayLike, params: ModelParams, seed: int) -> Pipeline:
    """Fit a new pipeline on ``features`` (the :data:`FEATURE_COLUMNS`) and boolean fraud ``labels``."""
    y = np.asarray(labels, dtype=bool)
    if len(features) != len(y):
        raise ValueError(f"{len(features)} feature rows but {len(y)} labels")
    if not y.any() or y.all():
        raise ValueError("training data needs both fraud and legitimate transactions")
    pipeline = build_pipeline(params, seed)
    pipeline.fit(features[list(FEATURE_COLUMNS)], y)
    return pipeline


def fraud_scores(model: Pipeline, features: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Probability of fraud per row (column of the positive class)."""
    proba = model.predict_proba(features[list(FEATURE_COLUMNS)])
    classes = list(model.classes_)
    return np.asarray(proba[:, classes.index(True)], dtype=np.float64)


def feature_importances(model: Pipeline) -> pd.Series:
    """Impurity importances by input feature, largest first."""
    names = model.named_steps["preprocess"].get_feature_names_out()
    values = model.named_steps["forest"].feature_importances_
    return pd.Series(values, index=list(names)).sort_values(ascending=False)
