"""Recording a training run in MLflow: params, metrics, plots and the registered model.

One run holds everything needed to audit or rebuild a model: the data window and split dates, the seed,
the feature horizons and hyper-parameters (params); validation and out-of-time test metrics, and
production's metrics on the same test window when there was a production model (metrics); the PR curve,
feature importances and confusion matrix (artifacts); and the model with its signature and an input example,
registered as a new version of ``fraud-detection-model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from shoplake.config import Settings
from shoplake.ml import registry

# The model's runtime needs only these (skips MLflow's slow requirement inference at log time).
PIP_REQUIREMENTS: Final = ("scikit-learn==1.9.1", "numpy", "pandas", "cloudpickle")


@dataclass(frozen=True)
class RunRecord:
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    test_labels: npt.NDArray[np.bool_]
    test_scores: npt.NDArray[np.float64]
    importances: pd.Series
    input_example: pd.DataFrame


def log_training_run(settings: Settings, model: Any, record: RunRecord, threshold: float) -> tuple[str, str]:
    """Log ``record`` and ``model`` as one run and register the model; returns (run_id, model version)."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    registry.mlflow_set_uris(settings)
    mlflow.set_experiment(settings.ml.experiment)
    with mlflow.start_run(tags=record.tags) as run:
        mlflow.log_params(record.params)
        mlflow.log_metrics(record.metrics)
        _log_figures(record, threshold)
        mlflow.log_text(record.importances.to_csv(header=["importance"]), "feature_importance.csv")
        example = record.input_example
        signature = infer_signature(example, model.predict_proba(example))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            pip_requirements=list(PIP_REQUIREMENTS),
            serialization_format="cloudpickle",
            registered_model_name=settings.ml.model_name,
            pyfunc_predict_fn="predict_proba",
        )
        version = str(info.registered_model_version)
    client = registry.client(settings)
    client.set_model_version_tag(settings.ml.model_name, version, registry.THRESHOLD_TAG, repr(float(threshold)))
    for key in ("window_start", "window_end", "split_test_start", "seed"):
        if key in record.params:
            client.set_model_version_tag(settings.ml.model_name, version, key, record.params[key])
    return run.info.run_id, version


def _log_figures(record: RunRecord, threshold: float) -> None:
    """PR curve, feature importance and confusion matrix as PNG artifacts (Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import mlflow
    from matplotlib import pyplot as plt
    from sklearn.metrics import precision_recall_curve

    m = record.metrics
    precision, recall, _ = precision_recall_curve(record.test_labels, record.test_scores)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot(recall, precision)
    ax.scatter([m["test_recall"]], [m["test_precision"]], color="red", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="recall", ylabel="precision", title=f"Out-of-time test PR (AP {m['test_average_precision']:.3f})")
    ax.legend()
    mlflow.log_figure(fig, "plots/pr_curve.png")
    plt.close(fig)

    top = record.importances.head(20)[::-1]
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh(list(top.index), list(top.to_numpy()))
    ax.set(title="Feature importance (impurity)")
    fig.tight_layout()
    mlflow.log_figure(fig, "plots/feature_importance.png")
    plt.close(fig)

    matrix = np.array([[m["test_tn"], m["test_fp"]], [m["test_fn"], m["test_tp"]]])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{int(value)}", ha="center", va="center")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["legit", "fraud"], yticklabels=["legit", "fraud"])
    ax.set(xlabel="predicted", ylabel="actual", title="Confusion matrix (test)")
    mlflow.log_figure(fig, "plots/confusion_matrix.png")
    plt.close(fig)
