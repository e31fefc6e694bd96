"""Airflow 3 as four supervised processes: api-server, scheduler, dag-processor and triggerer.

Everything is configured through ``AIRFLOW__*`` environment variables derived from the settings (no edited
``airflow.cfg``): PostgreSQL database ``AIRFLOW_DB`` as the metadata DB, LocalExecutor with
``AIRFLOW_PARALLELISM`` slots (the default 32 worker processes would swamp two cores), the repository's
``dags/`` folder, SimpleAuthManager with ``AIRFLOW_ADMIN_USER``/``AIRFLOW_ADMIN_PASSWORD`` (``users`` is
``user:role``; the password lives in the passwords file), and the execution API URL pointing at our port
(task runs default to port 8080 otherwise). The JWT and session secrets are generated once into
``AIRFLOW_HOME`` so every component signs and verifies tokens with the same key across restarts.

``airflow db migrate`` runs before the first start and again only when the Airflow version or database
changes (a stamp file), since it costs tens of seconds on a loaded machine. Healthy means the api-server's
``/api/v2/monitor/health`` reports the metadata DB, scheduler, triggerer and dag-processor healthy.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Final

from shoplake.config import Settings, env_for_children
from shoplake.files import write_text
from shoplake.stack import process
from shoplake.stack.process import PortClaim, ProcessSpec, ServiceError
from shoplake.stack.service import Health, Proc, Service

NAME: Final = "airflow"
COMPONENTS: Final = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_KEYS: Final = ("metadatabase", "scheduler", "triggerer", "dag_processor")
MIGRATE_TIMEOUT: Final = 900.0


def proc_name(component: str) -> str:
    return f"airflow-{component}"


def _api_host(settings: Settings) -> str:
    return "localhost" if settings.bind_host in ("0.0.0.0", "127.0.0.1") else settings.bind_host


def api_url(settings: Settings) -> str:
    return f"http://{_api_host(settings)}:{settings.airflow.api_port}"


def _secret(path: Path) -> str:
    """A random secret persisted in ``path`` (created once, readable by us only)."""
    if not path.is_file():
        write_text(path, secrets.token_urlsafe(48), mode=0o600)
    return path.read_text().strip()


def passwords_file(settings: Settings) -> Path:
    return settings.airflow.home / "simple_auth_manager_passwords.json"


def airflow_env(settings: Settings) -> dict[str, str]:
    """The environment every Airflow process (and CLI call) of the local stack runs with."""
    home = settings.airflow.home
    return env_for_children(
        settings,
        AIRFLOW_HOME=home,
        AIRFLOW__CORE__DAGS_FOLDER=settings.project_dir / "dags",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM=settings.airflow.parallelism,
        AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=settings.airflow.parallelism,
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{api_url(settings)}/execution/",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{settings.airflow.admin_user}:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=passwords_file(settings),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=settings.postgres.sqlalchemy_url(settings.postgres.airflow_db),
        AIRFLOW__API__HOST=settings.bind_host,
        AIRFLOW__API__PORT=settings.airflow.api_port,
        AIRFLOW__API__WORKERS=1,
        AIRFLOW__API__BASE_URL=api_url(settings),
        AIRFLOW__API__SECRET_KEY=_secret(home / "secrets" / "api_secret_key"),
        AIRFLOW__API_AUTH__JWT_SECRET=_secret(home / "secrets" / "jwt_secret"),
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES=1,
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=30,
        AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR="True",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=home / "logs",
        AIRFLOW__TRIGGERER__CAPACITY=50,
    )


def cli_env(settings: Settings, argv: list[str]) -> dict[str, str]:
    """The environment of one ``airflow`` CLI call (``shoplake airflow ...``) against the local stack.

    ``dags test`` parses the DAGs without deadline alerts (``AIRFLOW_DEADLINE_SCALE=0``): Airflow 3.3.2's
    ``dag.test()`` cannot complete a successful run of a DAG that has one (see
    :func:`shoplake.airflow.defaults.deadline`). That parse is written to the metadata DB as a new DAG
    version; the dag-processor writes the real one back on its next pass over the file.
    """
    env = airflow_env(settings)
    if argv[:2] == ["dags", "test"]:
        env["AIRFLOW_DEADLINE_SCALE"] = "0"
    return env


def write_passwords(settings: Settings) -> None:
    """SimpleAuthManager reads the password of each user from this JSON file (user -> password)."""
    path = passwords_file(settings)
    content = json.dumps({settings.airflow.admin_user: settings.airflow.admin_password.get_secret_value()})
    if not path.is_file() or path.read_text() != content:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(0o600)


def _migration_stamp(settings: Settings) -> str:
    from importlib.metadata import version

    key = f"{version('apache-airflow-core')}|{settings.postgres.sqlalchemy_url(settings.postgres.airflow_db)}"
    return hashlib.sha256(key.encode()).hexdigest()


def migrate(settings: Settings) -> bool:
    """``airflow db migrate`` unless this Airflow version already migrated this database; True if it ran."""
    stamp_file = settings.airflow.home / "db-migrated.stamp"
    stamp = _migration_stamp(settings)
    if stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return False
    log = process.log_file(settings.home, "airflow-db-migrate")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=airflow_env(settings),
            cwd=settings.airflow.home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=MIGRATE_TIMEOUT,
            check=False,
        )
    if done.returncode != 0:
        raise ServiceError(f"airflow db migrate failed (exit {done.returncode}); see {log}:\n{process.tail(log)}")
    stamp_file.write_text(stamp + "\n")
    return True


def read_health(settings: Settings, timeout: float = 5.0) -> dict[str, object]:
    with urllib.request.urlopen(f"{api_url(settings)}/api/v2/monitor/health", timeout=timeout) as resp:
        return dict(json.loads(resp.read()))


def health(settings: Settings) -> Health:
    """Healthy = the api-server answers and reports every component it tracks healthy."""
    if not process.port_open(settings.bind_host, settings.airflow.api_port):
        return Health(False, f"nothing listening on {settings.bind_host}:{settings.airflow.api_port}")
    try:
        report = read_health(settings)
    except (OSError, ValueError) as exc:
        return Health(False, f"GET /api/v2/monitor/health: {exc}")
    states = {}
    for key in HEALTH_KEYS:
        part = report.get(key)
        states[key] = part.get("status") if isinstance(part, dict) else None
    unhealthy = [f"{k}={v}" for k, v in states.items() if v != "healthy"]
    return Health(not unhealthy, "unhealthy: " + ", ".join(unhealthy) if unhealthy else "all components healthy")


def _api_answers(settings: Settings) -> bool:
    try:
        read_health(settings)
    except (OSError, ValueError):
        return False
    return True


def _component_alive(settings: Settings, component: str) -> bool:
    return process.running_pid(settings.home, proc_name(component)) is not None


def launch(settings: Settings) -> None:
    home = settings.airflow.home
    home.mkdir(parents=True, exist_ok=True)
    write_passwords(settings)
    migrate(settings)
    env = airflow_env(settings)
    timeout = settings.service_start_timeout
    for component in COMPONENTS:
        argv = [sys.executable, "-m", "airflow", component]
        if component == "api-server":
            argv += ["--host", settings.bind_host, "--port", str(settings.airflow.api_port), "--workers", "1"]
            ready = lambda: _api_answers(settings)  # noqa: E731
        else:
            if component in ("scheduler", "triggerer"):
                # Their log servers bind every interface on fixed ports (8793/8794); all components share one
                # local log folder, so the api-server reads task logs from disk and the servers are not needed.
                argv.append("--skip-serve-logs")
            # The api-server's health view shows the component only after its first heartbeat; here it is
            # enough that the process survived its start, the overall health check below waits for the rest.
            ready = lambda c=component: _component_alive(settings, c)  # type: ignore[misc]  # noqa: E731
        spec = ProcessSpec(name=proc_name(component), argv=argv, env=env, cwd=home)
        process.start(settings.home, spec, ready, timeout, f"Airflow {component}")
    _wait_healthy(settings, timeout)
    _warm_execution_api(settings, timeout)


def _warm_execution_api(settings: Settings, timeout: float) -> None:
    """Make the api-server build its execution API now, not when the first task starts.

    The api-server assembles the task execution API on its first request there; with one worker that
    blocks every request for many seconds on a loaded machine (the first task's ``PATCH .../run`` and the
    REST polls wait behind it; BENCHMARKS.md, "Airflow / demo"). Paying it during ``shoplake up`` keeps it
    out of the first DAG run.
    """
    with urllib.request.urlopen(f"{api_url(settings)}/execution/health", timeout=timeout) as resp:
        resp.read()


def _wait_healthy(settings: Settings, timeout: float) -> None:
    """Poll the health view until every component heartbeats; fail fast if one of our processes died."""
    deadline = time.monotonic() + timeout
    while True:
        state = health(settings)
        if state.ok:
            return
        dead = [c for c in COMPONENTS if not _component_alive(settings, c)]
        if dead or time.monotonic() > deadline:
            log = process.log_file(settings.home, proc_name(dead[0] if dead else "scheduler"))
            why = f"{', '.join(dead)} exited" if dead else f"not healthy within {timeout:.0f} s ({state.detail})"
            raise ServiceError(f"Airflow {why}; last lines of {log}:\n{process.tail(log)}")
        time.sleep(process.POLL_INTERVAL * 5)


SERVICE = Service(
    name=NAME,
    requires=("postgres",),
    processes=tuple(Proc(proc_name(c)) for c in COMPONENTS),
    address=api_url,
    ports=lambda s: [PortClaim(s.airflow.api_port, "AIRFLOW_API_PORT")],
    health=health,
    launch=launch,
)
