"""Starting, stopping and inspecting the registered services in dependency order.

The rules every service gets for free: ``up`` is a no-op for a healthy service; a service whose own
processes run but are unhealthy (half-started, wedged) is stopped and started again; a port held by
anything else is reported with the setting that moves it, before any process is started; after start
(or when already running) the service's idempotent ``ensure`` step runs; ``down`` goes in reverse order.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shoplake.config import Settings
from shoplake.stack import process, service
from shoplake.stack.service import Service

STOP_TIMEOUT = 60.0
"""Seconds a service gets to shut down cleanly before its process group is killed."""


@dataclass(frozen=True)
class ServiceStatus:
    """One row of ``shoplake status``."""

    name: str
    healthy: bool
    pid: int | None
    address: str
    detail: str


def validate(names: Sequence[str]) -> list[str]:
    """The names, checked against the registry (ValueError listing the valid names on a typo)."""
    for name in names:
        service.get(name)
    return list(dict.fromkeys(names))


def with_dependencies(names: Sequence[str]) -> list[str]:
    """``names`` plus everything they require, in registration (start) order."""
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name not in wanted:
            wanted.add(name)
            for dep in service.get(name).requires:
                add(dep)

    for name in validate(names):
        add(name)
    return [n for n in service.registered() if n in wanted]


def _pids(settings: Settings, svc: Service) -> list[int]:
    return [pid for p in svc.processes if (pid := process.running_pid(settings.home, p.name)) is not None]


def _stop(settings: Settings, svc: Service) -> None:
    for proc in reversed(svc.processes):
        process.stop(settings.home, proc.name, STOP_TIMEOUT, proc.stop_signal)


@contextmanager
def _start_lock(settings: Settings, name: str) -> Iterator[None]:
    """Hold ``{home}/locks/<name>.start.lock`` exclusively (``run/`` holds only pidfiles of live daemons).

    Two ``shoplake up`` commands at once (a developer's shell and a test session, say) would otherwise both
    see the service down and both launch it; the second then fails on the ports or, worse, replaces the
    first one's pidfile. With the lock, the second waits and finds the service healthy: a no-op.
    """
    lock_path = settings.home / "locks" / f"{name}.start.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def start_service(settings: Settings, svc: Service) -> bool:
    """Bring one service up; True when something was started (False = it was already healthy)."""
    with _start_lock(settings, svc.name):
        return _start_unlocked(settings, svc)


def _start_unlocked(settings: Settings, svc: Service) -> bool:
    started = False
    if not svc.health(settings).ok:
        if _pids(settings, svc):
            _stop(settings, svc)  # ours but unhealthy: restart rather than fight over the ports
        process.check_ports(svc.name, settings.bind_host, svc.ports(settings))
        try:
            svc.launch(settings)
        except BaseException:
            _stop(settings, svc)  # a multi-process service must not stay half-started
            raise
        started = True
    if svc.ensure is not None:
        svc.ensure(settings)
    return started


def up(settings: Settings, services: Sequence[str] | None = None, *, core: Sequence[str] = ()) -> list[str]:
    """Start ``services`` (default ``core``) and their dependencies; return the names actually started.

    Independent services start concurrently (each waits only for what it requires): the JVMs and MLflow
    spend most of their start-up waiting, so overlapping them roughly halves ``shoplake up``. The first
    failure in start order is raised once every launched service has finished starting or failing.
    """
    names = with_dependencies(list(services) if services is not None else list(core))
    futures: dict[str, Future[bool]] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="shoplake-up") as pool:
        for name in names:  # dependencies come first, so their futures already exist
            deps = [futures[d] for d in service.get(name).requires if d in futures]
            futures[name] = pool.submit(_start_after, settings, name, deps)
    for name in names:
        exc = futures[name].exception()
        if exc is not None and not isinstance(exc, _DependencyFailedError):
            raise exc
    return [name for name in names if futures[name].result()]


class _DependencyFailedError(RuntimeError):
    """A service was not started because something it requires failed (that failure is reported)."""


def _start_after(settings: Settings, name: str, deps: Sequence[Future[bool]]) -> bool:
    for dep in deps:
        if dep.exception() is not None:
            raise _DependencyFailedError(name)
    return start_service(settings, service.get(name))


def with_dependents(names: Sequence[str]) -> list[str]:
    """``names`` plus every registered service that (transitively) requires one of them, in start order."""
    wanted = set(validate(names))
    for name in service.registered():  # registration order puts dependencies before their dependents
        if wanted.intersection(service.get(name).requires):
            wanted.add(name)
    return [n for n in service.registered() if n in wanted]


def down(settings: Settings, services: Sequence[str] | None = None) -> None:
    """Stop ``services`` (default: every registered one) and their dependents, in reverse start order.

    Stopping PostgreSQL also stops MLflow (and Airflow): a server left without its database only fails later.
    """
    names = with_dependents(services) if services is not None else list(service.registered())
    for name in reversed(names):
        _stop(settings, service.get(name))


def status(settings: Settings) -> list[ServiceStatus]:
    rows = []
    for name in service.registered():
        svc = service.get(name)
        health = svc.health(settings)
        pids = _pids(settings, svc)
        rows.append(ServiceStatus(name, health.ok, pids[0] if pids else None, svc.address(settings), health.detail))
    return rows


def log_path(settings: Settings, name: str) -> Path:
    """The main log file of service ``name`` (its first process)."""
    return process.log_file(settings.home, service.get(name).processes[0].name)


def log_paths(settings: Settings, name: str) -> list[Path]:
    """Every log file of service ``name`` (one per supervised process)."""
    return [process.log_file(settings.home, p.name) for p in service.get(name).processes]


def format_table(rows: Sequence[ServiceStatus]) -> str:
    """``shoplake status`` as an aligned text table (the detail column is left ragged)."""
    table = [("SERVICE", "HEALTHY", "PID", "ADDRESS", "DETAIL")]
    table += [(r.name, "yes" if r.healthy else "NO", str(r.pid or "-"), r.address, r.detail) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in table)


def must_be_healthy(
    rows: Sequence[ServiceStatus], requested: Sequence[str] | None, core: Sequence[str]
) -> list[ServiceStatus]:
    """The rows that decide ``shoplake status``'s exit code.

    Explicitly requested services; by default the core services plus any optional one (Airflow) that has
    a running process - an optional service nobody started is not a failure, a started one that is
    unhealthy is.
    """
    if requested is not None:
        return [r for r in rows if r.name in requested]
    return [r for r in rows if r.name in core or r.pid is not None]
