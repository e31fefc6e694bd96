"""The forest is fed by ``model_input`` at scoring time: it must see exactly what the fitted pipeline would."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from shoplake.ml import train
from shoplake.ml.features import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES


def _features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(size=n) for c in NUMERIC_FEATURES})
    for c in CATEGORICAL_FEATURES:
        frame[c] = rng.choice(["web", "app", "pos"], size=n).astype(object)
    return frame


@pytest.fixture(scope="module")
def fitted() -> Pipeline:
    features = _features(300, 1)
    labels = features["amount_usd_log"].to_numpy() + features["cust_count_1h"].to_numpy() > 1.0
    return train.fit(features, labels, train.ModelParams(n_estimators=5, max_depth=4, n_jobs=2), seed=7)


@pytest.mark.unit
def test_model_input_equals_the_fitted_preprocessing_including_unknown_categories(fitted: Pipeline) -> None:
    features = _features(200, 2)
    features.loc[:9, "channel"] = "never-seen-in-training"
    expected = fitted.named_steps["preprocess"].transform(features[list(FEATURE_COLUMNS)])
    got = train.model_input(fitted, features)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert (got[:10, len(NUMERIC_FEATURES) + CATEGORICAL_FEATURES.index("channel")] == -1).all()
    as_categories = features.astype({c: "category" for c in CATEGORICAL_FEATURES})  # how scoring passes them
    np.testing.assert_array_equal(train.model_input(fitted, as_categories), got)


@pytest.mark.unit
def test_fraud_scores_match_the_pipelines_own_predict_proba(fitted: Pipeline) -> None:
    features = _features(200, 3)
    expected = fitted.predict_proba(features[list(FEATURE_COLUMNS)])[:, list(fitted.classes_).index(True)]
    np.testing.assert_allclose(train.fraud_scores(fitted, features), expected, rtol=0, atol=1e-12)


@pytest.mark.unit
def test_model_input_rejects_a_model_built_for_other_features(fitted: Pipeline) -> None:
    other = copy.deepcopy(fitted)
    other.named_steps["preprocess"].transformers_[0] = ("numeric", "passthrough", list(NUMERIC_FEATURES[:-1]))
    with pytest.raises(ValueError, match="do not match"):
        train.model_input(other, _features(10, 4))


@pytest.mark.unit
def test_scores_are_bit_identical_run_to_run_and_across_chunkings(fitted: Pipeline) -> None:
    features = _features(1001, 5)
    first = train.fraud_scores(fitted, features)
    np.testing.assert_array_equal(train.fraud_scores(fitted, features), first)
    np.testing.assert_array_equal(train.fraud_scores(fitted, features.iloc[:3]), first[:3])
