"""The model serving fraud scores: version behind ``@production``, its run's metrics, when it was promoted."""

from __future__ import annotations

from typing import Any

from shoplake.config import Settings


def production_model(settings: Settings, model_name: str | None = None) -> dict[str, Any]:
    """``{"name", "version", "run_id", "metrics", ...}``; ``deployed: False`` before the first promotion.

    MLflow being down is reported as ``error`` (a WARN: scoring keeps its loaded model), never raised.
    """
    name = model_name or settings.ml.model_name
    import requests

    try:  # MLflow's client retries a dead server for minutes: ask its health endpoint first, briefly
        requests.get(f"{settings.mlflow.tracking_uri}/health", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        return {"name": name, "error": f"MLflow unreachable at {settings.mlflow.tracking_uri}: {exc}"}
    try:
        from mlflow.exceptions import MlflowException

        from shoplake.ml.registry import client, production_version

        mlflow_client = client(settings)
        try:
            version = production_version(mlflow_client, name)
            if version is None:
                return {"name": name, "deployed": False}
            run = mlflow_client.get_run(version.run_id) if version.run_id else None
        except MlflowException as exc:
            return {"name": name, "error": f"MLflow registry unreadable at {settings.mlflow.tracking_uri}: {exc}"}
    except OSError as exc:  # requests' connection errors derive from OSError
        return {"name": name, "error": f"MLflow unreachable at {settings.mlflow.tracking_uri}: {exc}"}
    metrics = {k: round(float(v), 4) for k, v in sorted(run.data.metrics.items())} if run else {}
    return {
        "name": name,
        "deployed": True,
        "version": str(version.version),
        "run_id": version.run_id,
        "created_at_ms": int(version.creation_timestamp or 0),
        "metrics": metrics,
    }
