"""PostgreSQL for the warehouse, Airflow and MLflow, from the system's binaries.

The cluster lives in ``{home}/postgres/data`` and is created once with ``initdb`` (SCRAM authentication,
superuser ``POSTGRES_USER`` with ``POSTGRES_PASSWORD``). The server is started in the foreground under the
supervisor with its settings on the command line (``-p``, ``listen_addresses``, socket directory), so
changing ``POSTGRES_PORT`` needs no edit of ``postgresql.conf``. PostgreSQL refuses to run as root: when we
are root it runs as the ``postgres`` account that the Debian package creates, which is why the default
state directory for root is ``/var/lib/shoplake`` (traversable by that account) and not ``/root/...``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
from pathlib import Path

from shoplake.config import Settings
from shoplake.jvm import MissingDependencyError
from shoplake.stack import process
from shoplake.stack.process import PortClaim, ProcessSpec, ServiceError
from shoplake.stack.service import Health, Proc, Service

NAME = "postgres"
SYSTEM_USER = "postgres"
_DEBIAN_ROOT = Path("/usr/lib/postgresql")


def data_dir(settings: Settings) -> Path:
    return settings.home / "postgres" / "data"


def socket_dir(settings: Settings) -> Path:
    return settings.home / "postgres" / "socket"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", path.name)) or (0,)


def find_bin_dir(settings: Settings, debian_root: Path = _DEBIAN_ROOT) -> Path:
    """Directory holding ``initdb`` and ``postgres``: POSTGRES_BIN_DIR, the newest Debian install, or PATH."""
    if settings.postgres.bin_dir:
        configured = Path(settings.postgres.bin_dir)
        if (configured / "initdb").is_file() and (configured / "postgres").is_file():
            return configured
        raise MissingDependencyError(f"POSTGRES_BIN_DIR={configured} does not contain initdb and postgres")
    if debian_root.is_dir():
        for version_dir in sorted(debian_root.iterdir(), key=_version_key, reverse=True):
            candidate = version_dir / "bin"
            if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
                return candidate
    initdb, server = shutil.which("initdb"), shutil.which("postgres")
    if initdb and server and Path(initdb).parent == Path(server).parent:
        return Path(initdb).parent
    raise MissingDependencyError(
        "PostgreSQL server binaries (initdb, postgres) not found: install them "
        "(Debian: apt-get install postgresql) or set POSTGRES_BIN_DIR"
    )


def _run_as() -> str | None:
    """The account to run PostgreSQL as: ``postgres`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise MissingDependencyError(
            "PostgreSQL refuses to run as root and there is no 'postgres' account: "
            "install the server package (apt-get install postgresql) or run shoplake as a normal user"
        ) from None
    return SYSTEM_USER


def _chown(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def server_argv(settings: Settings, bin_dir: Path) -> list[str]:
    """Command line of the server; every setting that may change between runs is passed here."""
    return [
        str(bin_dir / "postgres"),
        "-D",
        str(data_dir(settings)),
        "-p",
        str(settings.postgres.port),
        "-c",
        f"listen_addresses={settings.bind_host}",
        "-c",
        f"unix_socket_directories={socket_dir(settings)}",
    ]


def unreachable_ancestor(path: Path, uid: int, gids: set[int]) -> Path | None:
    """The first existing ancestor of ``path`` that account ``uid``/``gids`` cannot traverse (x bit)."""
    for parent in reversed(path.parents):
        try:
            st = parent.stat()
        except FileNotFoundError:
            return None
        if st.st_uid == uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid in gids:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return parent
    return None


def _check_reachable(settings: Settings, user: str | None) -> None:
    """Fail before initdb when the ``postgres`` account cannot reach the state dir (e.g. under /root)."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    gids = {entry.pw_gid, *os.getgrouplist(user, entry.pw_gid)}
    blocked = unreachable_ancestor(data_dir(settings), entry.pw_uid, gids)
    if blocked is not None:
        raise ServiceError(
            f"PostgreSQL runs as '{user}', which cannot enter {blocked}: set SHOPLAKE_HOME to a directory it can "
            "reach (the default for root is /var/lib/shoplake) or allow it with chmod o+x"
        )


def _initdb(settings: Settings, bin_dir: Path, user: str | None) -> None:
    data = data_dir(settings)
    if (data / "PG_VERSION").is_file():
        return
    _check_reachable(settings, user)
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    _chown(data, user)
    pwfile = data.parent / ".initdb-password"
    pwfile.write_text(settings.postgres.password.get_secret_value() + "\n")
    pwfile.chmod(0o600)
    _chown(pwfile, user)
    log = process.log_file(settings.home, NAME)
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log.open("ab") as out:
            result = subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    settings.postgres.user,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=data,
                user=user,
                group=user,
                extra_groups=[] if user else None,
                check=False,
            )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)  # a half-initialised cluster would block every retry
        raise ServiceError(f"initdb failed (exit {result.returncode}); see {log}:\n{process.tail(log)}")


def health(settings: Settings) -> Health:
    """Healthy = a password login to the maintenance database answers ``select 1``."""
    if not process.port_open(settings.bind_host, settings.postgres.port):
        return Health(False, f"nothing listening on {settings.bind_host}:{settings.postgres.port}")
    import psycopg

    try:
        with psycopg.connect(settings.postgres.dsn("postgres"), connect_timeout=3) as conn:
            conn.execute("select 1").fetchone()
    except psycopg.Error as exc:
        return Health(False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return Health(True, "accepts connections")


def launch(settings: Settings) -> None:
    bin_dir = find_bin_dir(settings)
    user = _run_as()
    _initdb(settings, bin_dir, user)
    sockets = socket_dir(settings)
    sockets.mkdir(parents=True, exist_ok=True)
    _chown(sockets, user)
    spec = ProcessSpec(
        name=NAME,
        argv=server_argv(settings, bin_dir),
        cwd=data_dir(settings),
        user=user,
        stop_signal=signal.SIGINT,
    )
    process.start(settings.home, spec, lambda: health(settings).ok, settings.service_start_timeout, "PostgreSQL")


def ensure_databases(settings: Settings) -> None:
    """Create the warehouse, Airflow and MLflow databases when missing (CREATE DATABASE has no IF NOT EXISTS)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(settings.postgres.dsn("postgres"), autocommit=True, connect_timeout=5) as conn:
        existing = {row[0] for row in conn.execute("select datname from pg_database").fetchall()}
        for db in dict.fromkeys((settings.postgres.db, settings.postgres.airflow_db, settings.postgres.mlflow_db)):
            if db not in existing:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(db)))


SERVICE = Service(
    name=NAME,
    requires=(),
    # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions and exit, instead of waiting
    # for every client (SIGTERM, "smart") - a lingering Airflow connection would otherwise stall ``down``.
    processes=(Proc(NAME, signal.SIGINT),),
    address=lambda s: f"{s.bind_host}:{s.postgres.port}",
    ports=lambda s: [PortClaim(s.postgres.port, "POSTGRES_PORT")],
    health=health,
    launch=launch,
    ensure=ensure_databases,
)
