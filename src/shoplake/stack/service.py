"""What a local service is, and the registry of services that ``shoplake up/down/status`` know.

A service is described by data plus a few functions (address, ports, health, launch, post-start setup)
rather than by a class hierarchy, so that another package (Airflow) can add one with :func:`register`
without touching the stack. The generic order of operations (dependencies, no-op when healthy, port
checks, stop in reverse order) lives in :mod:`shoplake.stack.control`, not in the services.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass

from shoplake.config import Settings
from shoplake.stack.process import PortClaim


@dataclass(frozen=True)
class Health:
    """Result of a health probe; ``detail`` says what failed (or what answered) for ``shoplake status``."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class Proc:
    """A supervised process of a service: its name (pidfile and log name) and how to ask it to stop."""

    name: str
    stop_signal: signal.Signals = signal.SIGTERM


@dataclass(frozen=True)
class Service:
    """One local service.

    ``launch`` starts every process (in ``processes`` order) and returns once the service is healthy; it is
    only called when the service is not healthy and its ports are free. ``ensure`` is idempotent set-up
    that must hold whenever the service runs (e.g. PostgreSQL's databases), run after every ``up``.
    """

    name: str
    requires: tuple[str, ...]
    processes: tuple[Proc, ...]
    address: Callable[[Settings], str]
    ports: Callable[[Settings], list[PortClaim]]
    health: Callable[[Settings], Health]
    launch: Callable[[Settings], None]
    ensure: Callable[[Settings], None] | None = None


_REGISTRY: dict[str, Service] = {}


def register(service: Service) -> None:
    """Make ``service`` known to ``up/down/status``; its dependencies must be registered first."""
    missing = [r for r in service.requires if r not in _REGISTRY]
    if missing:
        raise ValueError(f"service {service.name!r} requires unknown services {missing}")
    _REGISTRY[service.name] = service


def registered() -> tuple[str, ...]:
    """Names of every registered service, in registration (= start) order."""
    return tuple(_REGISTRY)


def get(name: str) -> Service:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; valid services: {', '.join(_REGISTRY)}") from None
