"""The MLflow tracking server, backed by PostgreSQL, serving artifacts from a local directory.

Artifacts are proxied (``--serve-artifacts --artifacts-destination``): clients upload and download them
through the server, so a client needs only ``MLFLOW_TRACKING_URI`` - as it would against a remote server -
while the files land in ``MLFLOW_ARTIFACT_ROOT``. One worker and no job execution
(``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``) cut its start-up on two cores by more than half.
"""

from __future__ import annotations

import os
import sys
import urllib.request

from shoplake.config import Settings
from shoplake.stack import process
from shoplake.stack.process import PortClaim, ProcessSpec
from shoplake.stack.service import Health, Proc, Service

NAME = "mlflow"


def server_argv(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        settings.bind_host,
        "--port",
        str(settings.mlflow.port),
        "--workers",
        "1",
        "--serve-artifacts",
        "--artifacts-destination",
        str(settings.mlflow.artifact_root),
    ]


def server_env(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """The backend store URI carries the PostgreSQL password: it goes in the environment (readable by the
    owner only), never on the command line, which every local user can read in ``ps`` and /proc."""
    return {
        **base,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_BACKEND_STORE_URI": settings.postgres.sqlalchemy_url(settings.postgres.mlflow_db),
    }


def health(settings: Settings) -> Health:
    """Healthy = ``GET {MLFLOW_TRACKING_URI}/health`` answers 200."""
    if not process.port_open(settings.bind_host, settings.mlflow.port):
        return Health(False, f"nothing listening on {settings.bind_host}:{settings.mlflow.port}")
    url = f"{settings.mlflow.tracking_uri}/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            status = resp.status
    except OSError as exc:
        return Health(False, f"GET {url}: {exc}")
    return Health(status == 200, f"GET /health: {status}")


def launch(settings: Settings) -> None:
    settings.mlflow.artifact_root.mkdir(parents=True, exist_ok=True)
    state = settings.home / "mlflow"
    state.mkdir(parents=True, exist_ok=True)
    spec = ProcessSpec(name=NAME, argv=server_argv(settings), env=server_env(settings, dict(os.environ)), cwd=state)
    process.start(settings.home, spec, lambda: health(settings).ok, settings.service_start_timeout, "MLflow")


SERVICE = Service(
    name=NAME,
    requires=("postgres",),
    processes=(Proc(NAME),),
    address=lambda s: s.mlflow.tracking_uri,
    ports=lambda s: [PortClaim(s.mlflow.port, "MLFLOW_TRACKING_URI")],
    health=health,
    launch=launch,
)
