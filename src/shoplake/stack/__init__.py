"""The local stack: PostgreSQL, Kafka, the schema registry and MLflow as supervised local processes.

Public API (used by the CLI, the test fixtures and the benchmarks)::

    SERVICES                      core services in start order
    up(settings, services=None)   start services (default: SERVICES) and their dependencies
    down(settings, services=None) stop services (default: all registered) in reverse order
    status(settings)              one ServiceStatus per registered service
    log_path(settings, service)   the service's log file

Airflow (:mod:`shoplake.stack.airflow`) is registered but started only on request (``up(settings, ["airflow"])``);
further services join through :func:`shoplake.stack.service.register`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from shoplake.config import Settings
from shoplake.stack import airflow as airflow_service
from shoplake.stack import control, kafka, mlflow_server, postgres, registry, service, spark_cluster
from shoplake.stack.control import ServiceStatus, log_path, status
from shoplake.stack.process import PortInUseError, ServiceError

# Airflow is registered (``shoplake up airflow``, ``down``, ``status``) but not a core service: it is heavy.
# So is the Spark standalone cluster (``shoplake up spark``): jobs use it only when SPARK_MASTER points at it.
for _svc in (
    postgres.SERVICE,
    kafka.SERVICE,
    registry.SERVICE,
    mlflow_server.SERVICE,
    airflow_service.SERVICE,
    spark_cluster.SERVICE,
):
    if _svc.name not in service.registered():
        service.register(_svc)

SERVICES: Final[tuple[str, ...]] = ("postgres", "kafka", "registry", "mlflow")


def up(settings: Settings, services: Sequence[str] | None = None) -> None:
    """Start ``services`` (default: all core services) and what they depend on; no-op for healthy ones."""
    control.up(settings, services, core=SERVICES)


def down(settings: Settings, services: Sequence[str] | None = None) -> None:
    """Stop ``services`` (default: every registered service) in reverse start order."""
    control.down(settings, services)


__all__ = ["SERVICES", "PortInUseError", "ServiceError", "ServiceStatus", "down", "log_path", "status", "up"]
