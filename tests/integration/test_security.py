"""Security properties of the running local stack: loopback only, authentication on, no leaked passwords.

Checked on the real processes the supervisor started (found through their pidfiles, then every process in
each daemon's process group, since MLflow's and Airflow's workers inherit the listening sockets):

* every listening TCP socket is bound to 127.0.0.1 / ::1, never a wildcard or a public interface;
* no command line carries a password (``/proc/<pid>/cmdline`` is readable by every local user);
* Airflow's REST API answers 401 without a token and with a forged one;
* neither password appears in any log, report or generated file under ``SHOPLAKE_HOME`` (secret stores
  the services need - the Airflow passwords file - must be owner-only instead).

The two password scans need passwords that cannot occur by chance ("postgres" is also a user name and a
word in every log), and CI runs the session stack with the local defaults. So they run against a private,
short-lived stack of their own - every service, Airflow included, in a fresh SHOPLAKE_HOME on free ports -
started with freshly generated passwords and put to work (an ingest through registry and Kafka, an MLflow
experiment, authenticated Airflow calls, a health report) before its command lines and files are scanned.
The session stack and its local defaults are left untouched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest
import requests

from shoplake import stack as local_stack
from shoplake.airflow.rest import AirflowClient, base_url
from shoplake.config import Settings
from shoplake.ingestion.run import ingest
from shoplake.monitoring import report
from shoplake.stack import airflow as airflow_stack
from shoplake.stack import process, service

pytestmark = pytest.mark.integration

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
# Folders holding data rather than text the platform writes: database files, message logs, jars, model
# binaries. Generated configurations beside them (kafka/server.properties, ...) are scanned.
NOT_SCANNED = ("jvm", "postgres/data", "registry/registry.mv.db", "mlflow/artifacts", "spark", "kafka/data")


def _service_processes(settings: Settings) -> dict[str, list[psutil.Process]]:
    """Every live process of every supervised daemon, by service name."""
    out: dict[str, list[psutil.Process]] = {}
    for pidfile in sorted((settings.home / "run").glob("*.pid")):
        pid = process.running_pid(settings.home, pidfile.stem)
        if pid is None:
            continue
        members = process.group_members(pid) or [pid]
        procs = []
        for member in members:
            try:
                procs.append(psutil.Process(member))
            except psutil.NoSuchProcess:
                continue
        out[pidfile.stem] = procs
    return out


def _listeners(procs: list[psutil.Process]) -> set[tuple[str, int]]:
    found = set()
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        found |= {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return found


def test_every_service_listens_on_loopback_only(stack: Settings) -> None:
    services = _service_processes(stack)
    assert {"postgres", "kafka", "registry", "mlflow"} <= set(services)
    listeners = {name: _listeners(procs) for name, procs in services.items()}
    # the check looks at the right sockets: each service's configured port is among them
    expected = {
        "postgres": stack.postgres.port,
        "kafka": stack.kafka.port,
        "mlflow": stack.mlflow.port,
        "registry": stack.registry.internal_port,
    }
    for name, port in expected.items():
        assert port in {p for _, p in listeners[name]}, f"{name} does not listen on {port}: {listeners[name]}"
    exposed = {name: sorted(s for s in socks if s[0] not in LOOPBACK) for name, socks in listeners.items()}
    assert {name: socks for name, socks in exposed.items() if socks} == {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _secrets_of(settings: Settings) -> dict[str, str]:
    """Each password as written and URL-quoted (how it appears inside a SQLAlchemy or MLflow store URI)."""
    plain = {
        "postgres": settings.postgres.password.get_secret_value(),
        "airflow": settings.airflow.admin_password.get_secret_value(),
    }
    return {**plain, **{f"{label} (URL-quoted)": quote(secret, safe="") for label, secret in plain.items()}}


@pytest.fixture(scope="module")
def secret_stack(stack: Settings) -> Iterator[Settings]:
    """A private stack (every service, Airflow too) with generated passwords, after some real work."""
    # Not pytest's tmp_path: that is 0700 and PostgreSQL runs as the unprivileged postgres user.
    home = Path(tempfile.mkdtemp(prefix="shoplake-secrets-"))
    home.chmod(0o755)
    (home / "jvm").symlink_to(stack.jvm_dir)  # the resolved jars, not re-resolved
    ports = {name: _free_port() for name in ("pg", "kafka", "ctl", "reg", "reg_in", "reg_mgmt", "mlflow", "af")}
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_ARTIFACT_ROOT", "AIRFLOW_HOME")}
    env.update(
        SHOPLAKE_HOME=str(home),
        DELTA_BASE_PATH=str(home / "delta"),
        POSTGRES_PORT=str(ports["pg"]),
        KAFKA_BOOTSTRAP_SERVERS=f"localhost:{ports['kafka']}",
        KAFKA_BROKERS="1",
        KAFKA_CONTROLLER_PORT=str(ports["ctl"]),
        SCHEMA_REGISTRY_URL=f"http://localhost:{ports['reg']}",
        SCHEMA_REGISTRY_INTERNAL_PORT=str(ports["reg_in"]),
        SCHEMA_REGISTRY_MANAGEMENT_PORT=str(ports["reg_mgmt"]),
        MLFLOW_TRACKING_URI=f"http://localhost:{ports['mlflow']}",
        AIRFLOW_API_PORT=str(ports["af"]),
        # symbols too: a password that needs quoting in a URL or libpq string is where leaks hide
        POSTGRES_PASSWORD=f"pg-{secrets.token_hex(12)}%@:",
        AIRFLOW_ADMIN_PASSWORD=f"af-{secrets.token_hex(12)}",
    )
    settings = Settings.from_env(env)
    try:
        local_stack.up(settings, [*local_stack.SERVICES, "airflow"])
        client = AirflowClient(settings)
        client.request("GET", "/dags", params={"limit": 1})  # logs in with the password
        ingested = ingest(settings, 200, 7, "2026-06-01T00:00:00Z", run_key="secrets")  # registry + Kafka
        assert ingested.verify is not None and ingested.verify.ok
        created = requests.post(
            f"{settings.mlflow.tracking_uri}/api/2.0/mlflow/experiments/create", json={"name": "secrets"}, timeout=60
        )
        created.raise_for_status()  # MLflow wrote to its PostgreSQL backend store
        report.write_report(settings, report.build_report(settings, datetime.now(UTC)))
        yield settings
    finally:
        for name in service.registered():  # throw-away state: no clean shutdown needed
            for proc in service.get(name).processes:
                process.stop(home, proc.name, 30.0, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


def test_no_command_line_carries_a_password(secret_stack: Settings) -> None:
    services = _service_processes(secret_stack)
    assert {"postgres", "kafka", "registry", "registry-gateway", "mlflow", "airflow-api-server"} <= set(services)
    leaks = {
        f"{name}:{proc.pid}: {label} password"
        for name, procs in services.items()
        for proc in procs
        for label, secret in _secrets_of(secret_stack).items()
        if any(secret in arg for arg in proc.cmdline())
    }
    assert leaks == set()


@pytest.fixture(scope="module")
def airflow_url(airflow: AirflowClient) -> Iterator[str]:
    yield base_url(airflow.settings)


@pytest.mark.parametrize(
    ("headers", "codes"),
    [
        ({}, {401}),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, {401}),  # basic auth is not accepted at all
        ({"Authorization": "Bearer forged.jwt.token"}, {401, 403}),  # Airflow answers 403 "invalid JWT"
    ],
)
def test_airflow_api_refuses_requests_without_a_valid_token(
    airflow_url: str, headers: dict[str, str], codes: set[int]
) -> None:
    resp = requests.get(f"{airflow_url}/api/v2/dags", headers=headers, timeout=30)
    assert resp.status_code in codes


def test_airflow_login_with_a_wrong_password_is_refused(airflow: AirflowClient) -> None:
    wrong = {"username": airflow.settings.airflow.admin_user, "password": "wrong-one"}  # pragma: allowlist secret
    resp = requests.post(f"{airflow.url}/auth/token", json=wrong, timeout=30)
    assert resp.status_code in (401, 403)
    assert airflow.request("GET", "/dags", params={"limit": 1})["total_entries"] >= 1  # the right one works


def _scanned_files(home: Path) -> Iterator[Path]:
    for path in home.rglob("*"):
        rel = path.relative_to(home).as_posix()
        if path.is_file() and not any(rel == d or rel.startswith(d + "/") for d in NOT_SCANNED):
            yield path


def test_passwords_never_appear_in_logs_reports_or_generated_files(secret_stack: Settings) -> None:
    home = secret_stack.home
    store = airflow_stack.passwords_file(secret_stack)
    assert stat.S_IMODE(store.stat().st_mode) == 0o600  # the one file that must hold a password: owner-only
    scanned = [path for path in _scanned_files(home) if path != store]
    leaks = [
        f"{path}: {label} password"
        for path in scanned
        for label, secret in _secrets_of(secret_stack).items()
        if secret.encode() in path.read_bytes()
    ]
    # the scan saw what every service and the work wrote: each service's log, a report, a generated config
    names = {p.relative_to(home).as_posix() for p in scanned}
    expected = {"logs/postgres.log", "logs/kafka.log", "logs/registry.log", "logs/mlflow.log"}
    expected |= {"logs/airflow-api-server.log", "logs/airflow-scheduler.log", "reports/streaming-health/latest.json"}
    expected |= {"kafka/server.properties"}
    assert expected <= names, expected - names
    assert "Kafka Server started" in (home / "logs" / "kafka.log").read_text(errors="replace")
    assert leaks == []
