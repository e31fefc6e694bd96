"""The model: a preprocessing + RandomForest scikit-learn Pipeline, seeded and class-weighted.

Why these choices: a forest needs no scaling, so preprocessing is only "numbers through, categories to
ordinal codes" (unknown categories at scoring time become -1 instead of failing). ``balanced_subsample``
re-weights the ~2 % fraud class per tree. ``max_samples`` bootstraps a fraction of the training rows per tree:
on a two-core machine it is what keeps a million-row fit inside the time budget, and with hundreds of
thousands of rows per fraction the trees lose almost nothing. The pipeline holds only scikit-learn objects,
so a saved model loads anywhere without this package installed.
"""

from __future__ import annotations

import copy
import os
from concurrent.futures import ThreadPoolExecutor
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
    """Probability of fraud per row (column of the positive class).

    A pipeline from :func:`build_pipeline` is fed through :func:`model_input` straight into its forest; any
    other classifier (e.g. a test double) gets the feature frame through its own ``predict_proba``.
    """
    if isinstance(model, Pipeline):
        proba = _forest_proba(model.named_steps["forest"], model_input(model, features))
    else:
        proba = model.predict_proba(features[list(FEATURE_COLUMNS)])
    classes = list(model.classes_)
    return np.asarray(proba[:, classes.index(True)], dtype=np.float64)


def _forest_proba(forest: RandomForestClassifier, matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """``forest.predict_proba`` over row chunks scored concurrently, each by a single-threaded copy.

    Why not the forest's own ``n_jobs``: its threads add tree outputs into one shared array in whatever order
    they finish, so the same rows could score a last bit differently run to run (and move a threshold picked on
    them). Here every row sums its trees in a fixed order - bit-identical scores, whatever the chunking - and
    the chunks keep the cores busy without contending for one output lock (tree traversal releases the GIL).
    """
    single = copy.copy(forest)  # shares the fitted trees
    single.n_jobs = 1
    workers = forest.n_jobs if forest.n_jobs is not None and forest.n_jobs > 0 else os.cpu_count() or 1
    if workers == 1 or len(matrix) < 2 * workers:
        return np.asarray(single.predict_proba(matrix), dtype=np.float64)
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(single.predict_proba, np.array_split(matrix, workers)))
    return np.asarray(np.concatenate(parts), dtype=np.float64)


def model_input(model: Pipeline, features: pd.DataFrame) -> npt.NDArray[np.float32]:
    """What the fitted preprocessing step hands the forest, built straight into one float32 matrix.

    Same values as ``model.named_steps["preprocess"].transform`` (numbers through, each category to its
    position in the encoder's fitted ``categories_``, unknown -1) - a unit test holds the two equal - but
    without the encoder's per-row dictionary lookups over object arrays and the float64 copy the forest
    would cast to float32 anyway, which were about half of the prediction time.
    """
    preprocess = model.named_steps["preprocess"]
    columns = {name: list(cols) for name, _, cols in preprocess.transformers_ if name != "remainder"}
    if columns != {"numeric": list(NUMERIC_FEATURES), "categorical": list(CATEGORICAL_FEATURES)}:
        raise ValueError(f"model preprocessing columns {columns} do not match this code's features")
    categories = preprocess.named_transformers_["categorical"].categories_
    matrix = np.empty((len(features), len(FEATURE_COLUMNS)), dtype=np.float32)
    for j, name in enumerate(NUMERIC_FEATURES):
        matrix[:, j] = features[name].to_numpy(dtype=np.float64)
    for k, (name, known) in enumerate(zip(CATEGORICAL_FEATURES, categories, strict=True)):
        matrix[:, len(NUMERIC_FEATURES) + k] = pd.Categorical(features[name], categories=known).codes
    return matrix


def feature_importances(model: Pipeline) -> pd.Series:
    """Impurity importances by input feature, largest first."""
    names = model.named_steps["preprocess"].get_feature_names_out()
    values = model.named_steps["forest"].feature_importances_
    return pd.Series(values, index=list(names)).sort_values(ascending=False)
