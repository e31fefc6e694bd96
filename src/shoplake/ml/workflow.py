"""Train -> evaluate out of time -> compare with production -> record: the steps `shoplake train` and the DAG run.

:func:`train_and_evaluate` ends with a registered candidate version and an MLflow run holding everything the
deployment decision needs; :func:`shoplake.ml.deploy.deploy` then makes that decision. Splitting them lets
the DAG branch between "evaluate" and "deploy" and pass its Airflow Variables to the latter.

MLflow outages: training checks the tracking server before the expensive work and again whenever an MLflow
call fails; an unreachable server raises :class:`MlflowUnavailableError` (the Airflow task fails and is
retried). Training never moves the ``production`` alias - only :func:`~shoplake.ml.deploy.deploy` does, in
one registry call - so an outage at any point leaves production exactly as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shoplake.config import Settings
from shoplake.ml import deploy, evaluate, registry, tracking, train
from shoplake.ml.extract import Window, load_window
from shoplake.ml.features import FEATURE_COLUMNS, FeatureConfig, build_features

log = logging.getLogger(__name__)


class MlflowUnavailableError(RuntimeError):
    """The MLflow tracking server could not be reached during training; ``@production`` is unchanged."""


@contextmanager
def _needs_mlflow(settings: Settings, phase: str) -> Iterator[None]:
    """Turn a failure during an MLflow phase into a clear error when the server is the cause."""
    try:
        yield
    except Exception as exc:
        if registry.reachable(settings):
            raise
        raise MlflowUnavailableError(
            f"MLflow at {settings.mlflow.tracking_uri} is unreachable ({phase}: {type(exc).__name__}). "
            "Nothing was deployed: the production alias is unchanged. Start MLflow (`shoplake up mlflow`) "
            "and run the training again."
        ) from exc


@contextmanager
def _timed(seconds: dict[str, float], phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[phase] = round(time.perf_counter() - started, 3)


@dataclass(frozen=True)
class TrainingResult:
    """What a training run produced (JSON-able via :meth:`as_dict`)."""

    run_id: str
    version: str
    threshold: float
    split: dict[str, str]
    rows: dict[str, int]
    test_metrics: dict[str, float]
    production_version: str | None
    production_metrics: dict[str, float] = field(default_factory=dict)
    production_problem: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase (logs, benchmarks)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Evaluated:
    threshold: float
    validation: dict[str, float]
    test: dict[str, float]
    test_labels: np.ndarray[Any, np.dtype[np.bool_]]
    test_scores: np.ndarray[Any, np.dtype[np.float64]]


def train_and_evaluate(
    settings: Settings,
    window: Window,
    *,
    seed: int = 42,
    feature_config: FeatureConfig | None = None,
    model_params: train.ModelParams | None = None,
    shuffle_labels: bool = False,
) -> TrainingResult:
    """Fit on the early part of ``window``, pick the threshold on validation, measure on the later test days.

    ``shuffle_labels`` permutes ``is_fraud`` before anything else (features included): the control experiment
    proving that the gates can fail - a model of noise must never be deployed.
    """
    config = feature_config or FeatureConfig()
    params = model_params or train.ModelParams()
    split = evaluate.plan_split(window, gap=config.label_delay)
    seconds: dict[str, float] = {}
    if not registry.reachable(settings):  # fail in seconds, not after extraction and fitting
        raise MlflowUnavailableError(
            f"MLflow at {settings.mlflow.tracking_uri} is unreachable: training needs it to record the "
            "candidate. Start it with `shoplake up mlflow`; nothing was trained or deployed."
        )
    with _timed(seconds, "extract"):
        frame, in_window = load_window(settings, window, config.required_history())
    if shuffle_labels:
        rng = np.random.default_rng(seed)
        frame = frame.assign(is_fraud=rng.permutation(frame["is_fraud"].to_numpy()))
    with _timed(seconds, "features"):
        features = build_features(frame, config, target=in_window.to_numpy())
    rows = frame.loc[features.index]
    part = split.assign(rows["event_time"])
    labels = rows["is_fraud"].fillna(False).to_numpy(dtype=bool)
    counts = {name: int((part == name).sum()) for name in evaluate.SPLIT_NAMES}
    log.info("split %s rows %s", split.as_params(), counts)

    is_train = part == "train"
    with _timed(seconds, "fit"):
        model = train.fit(features[is_train], labels[is_train], params, seed)
    with _timed(seconds, "evaluate"):
        result = _evaluate(model, features, labels, part, rows["fraud_pattern"])

    client = registry.client(settings)
    with _needs_mlflow(settings, "reading the production version"):
        current = registry.production_version(client, settings.ml.model_name)
    production_metrics: dict[str, float] = {}
    problem = None
    if current is not None:
        with _timed(seconds, "evaluate_production"):
            try:
                production_metrics = _production_on_test(
                    settings, client, current=current, frame=frame, part=part, index=features.index
                )
            except Exception as exc:  # any failure to evaluate production blocks deployment with its reason
                problem = f"version {current.version}: {type(exc).__name__}: {exc}"

    run_params = {
        **window.as_params(),
        **split.as_params(),
        **config.as_params(),
        **params.as_params(),
        "seed": str(seed),
        "shuffle_labels": str(shuffle_labels),
        "n_features": str(len(FEATURE_COLUMNS)),
        **{f"rows_{k}": str(v) for k, v in counts.items()},
    }
    metrics = {f"{deploy.CANDIDATE_PREFIX}{k}": v for k, v in result.test.items()}
    metrics |= {f"validation_{k}": v for k, v in result.validation.items()}
    metrics |= {f"{deploy.PRODUCTION_PREFIX}{k}": v for k, v in production_metrics.items()}
    tags = {deploy.COMPARED_TAG: str(current.version) if current is not None else ""}
    if problem:
        tags[deploy.PROBLEM_TAG] = problem
    record = tracking.RunRecord(
        params=run_params,
        metrics=metrics,
        tags=tags,
        test_labels=result.test_labels,
        test_scores=result.test_scores,
        importances=train.feature_importances(model),
        input_example=features[is_train].head(5),
    )
    with _timed(seconds, "mlflow_log"), _needs_mlflow(settings, "recording the candidate"):
        run_id, version = tracking.log_training_run(settings, model, record, result.threshold)
        client.set_tag(run_id, deploy.VERSION_TAG, version)
    return TrainingResult(
        run_id=run_id,
        version=version,
        threshold=result.threshold,
        split=split.as_params(),
        rows=counts,
        test_metrics=result.test,
        production_version=str(current.version) if current is not None else None,
        production_metrics=production_metrics,
        production_problem=problem,
        seconds=seconds,
    )


def _evaluate(
    model: Any, features: pd.DataFrame, labels: np.ndarray[Any, Any], part: np.ndarray[Any, Any], patterns: pd.Series
) -> _Evaluated:
    is_val, is_test = part == "validation", part == "test"
    val_scores = train.fraud_scores(model, features[is_val])
    threshold = evaluate.choose_threshold(labels[is_val], val_scores)
    validation = evaluate.classification_metrics(labels[is_val], val_scores, threshold)
    test_scores = train.fraud_scores(model, features[is_test])
    test = evaluate.classification_metrics(labels[is_test], test_scores, threshold, patterns[is_test])
    return _Evaluated(threshold, validation, test, labels[is_test], test_scores)


def _production_on_test(
    settings: Settings,
    client: Any,
    *,
    current: Any,
    frame: pd.DataFrame,
    part: np.ndarray[Any, Any],
    index: pd.Index,
) -> dict[str, float]:
    """Production's metrics on the candidate's test rows, with production's own features and threshold."""
    spec = registry.version_spec(client, current)
    test_index = index[part == "test"]
    target = frame.index.isin(test_index)
    features = build_features(frame, spec.feature_config, target=target)
    model = registry.load_model(settings, spec.version)
    scores = train.fraud_scores(model, features)
    rows = frame.loc[features.index]
    return evaluate.classification_metrics(
        rows["is_fraud"].fillna(False).to_numpy(dtype=bool), scores, spec.threshold, rows["fraud_pattern"]
    )
