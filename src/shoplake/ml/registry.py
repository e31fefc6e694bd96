"""The MLflow model registry as Shoplake uses it: one registered model, the ``production`` alias, version tags.

Aliases replace the deprecated stages: ``models:/fraud-detection-model@production`` always names the
version that scoring uses, and moving it is a single atomic registry call. What a version needs at
scoring time besides its weights - the decision threshold and the feature horizons it was trained with -
is stored on the version itself (tags) and on its run (params), so scoring never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from shoplake.config import Settings
from shoplake.ml.features import FeatureConfig

PRODUCTION_ALIAS: Final = "production"
THRESHOLD_TAG: Final = "decision_threshold"


def client(settings: Settings) -> MlflowClient:
    """A client bound to the configured tracking server (also the registry)."""
    return MlflowClient(tracking_uri=settings.mlflow.tracking_uri, registry_uri=settings.mlflow.tracking_uri)


def reachable(settings: Settings, timeout: float = 5.0) -> bool:
    """True when the tracking server answers its health endpoint (one short request, no client retries)."""
    import requests

    try:
        return requests.get(f"{settings.mlflow.tracking_uri}/health", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def production_version(mlflow_client: MlflowClient, model_name: str) -> ModelVersion | None:
    """The version behind ``@production``, or None when the model or the alias does not exist yet."""
    try:
        return mlflow_client.get_model_version_by_alias(model_name, PRODUCTION_ALIAS)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def model_uri(model_name: str, version: str) -> str:
    return f"models:/{model_name}/{version}"


def load_model(settings: Settings, version: str) -> Any:
    """The fitted scikit-learn pipeline of a registered version."""
    import mlflow.sklearn

    mlflow_set_uris(settings)
    return mlflow.sklearn.load_model(model_uri(settings.ml.model_name, version))


def mlflow_set_uris(settings: Settings) -> None:
    """Point the fluent MLflow API at the configured server (the client API takes it explicitly)."""
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    mlflow.set_registry_uri(settings.mlflow.tracking_uri)


@dataclass(frozen=True)
class VersionSpec:
    """What scoring needs to use a version exactly as it was evaluated."""

    version: str
    run_id: str
    threshold: float
    feature_config: FeatureConfig


def version_spec(mlflow_client: MlflowClient, version: ModelVersion) -> VersionSpec:
    """Threshold (version tag) and feature horizons (run params) of a registered version."""
    if THRESHOLD_TAG not in version.tags:
        raise ValueError(f"{version.name} version {version.version} has no {THRESHOLD_TAG!r} tag")
    if not version.run_id:
        raise ValueError(f"{version.name} version {version.version} has no source run")
    params = mlflow_client.get_run(version.run_id).data.params
    return VersionSpec(
        version=str(version.version),
        run_id=str(version.run_id),
        threshold=float(version.tags[THRESHOLD_TAG]),
        feature_config=feature_config_from_params(params),
    )


def feature_config_from_params(params: dict[str, str]) -> FeatureConfig:
    """Inverse of :meth:`FeatureConfig.as_params`; missing params fall back to the defaults."""
    default = FeatureConfig()

    def hours(name: str) -> timedelta:
        key = f"feature_{name}_hours"
        value: timedelta = getattr(default, name)
        return timedelta(hours=float(params[key])) if key in params else value

    smoothing = float(params.get("feature_risk_smoothing", default.risk_smoothing))
    return FeatureConfig(
        history=hours("history"),
        label_delay=hours("label_delay"),
        risk_window=hours("risk_window"),
        recent_risk_window=hours("recent_risk_window"),
        risk_smoothing=smoothing,
    )
