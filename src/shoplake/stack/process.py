"""A small process supervisor for the local stack's daemons (Linux only).

Every daemon (PostgreSQL, the Kafka and Apicurio JVMs, the registry gateway, MLflow) is started the same
way: in its own session, so that it and everything it forks share one process group that we can signal
as a whole and that outlives the ``shoplake up`` command; with stdout/stderr appended to
``{home}/logs/<name>.log``; and with its pid in ``{home}/run/<name>.pid`` so a later ``shoplake down``
(another process) can find it. Start-up waits on a real health check with a deadline and fails fast, with
the tail of the log, when the daemon exits early. Stopping signals the whole group, waits with a deadline
and falls back to SIGKILL, so no orphan survives.

Process state is read from ``/proc`` (zombies count as dead, the process group is found by scanning
``/proc/*/stat``), which is why this module is Linux-only like the rest of the local stack.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shoplake.files import write_text

POLL_INTERVAL = 0.2
"""Seconds between two health probes; short enough not to add latency, long enough not to spin."""


class ServiceError(RuntimeError):
    """A service could not be started or stopped; the message says why and what to do."""


class PortInUseError(ServiceError):
    """A port a service needs is held by something that is not that (healthy) service."""

    def __init__(self, service: str, port: int, setting: str, owner_pid: int | None, host: str) -> None:
        owner = f" by pid {owner_pid} ({_cmdline(owner_pid)})" if owner_pid else ""
        super().__init__(
            f"cannot start {service}: port {port} on {host} is already in use{owner}. "
            f"Stop that process or choose another port with {setting}."
        )
        self.service = service
        self.port = port
        self.setting = setting
        self.owner_pid = owner_pid


@dataclass(frozen=True)
class PortClaim:
    """A TCP port a service listens on, with the setting (environment variable) that chooses it."""

    port: int
    setting: str


@dataclass(frozen=True)
class ProcessSpec:
    """How to launch one daemon process.

    ``user`` switches to that account (by name) before exec; it is used to run PostgreSQL, which refuses
    to run as root. Doing it with ``Popen(user=...)`` rather than ``runuser`` keeps the daemon itself as
    the group leader, so signals reach it directly and not through a wrapper that may not forward them.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    user: str | None = None
    stop_signal: signal.Signals = signal.SIGTERM


# ---- pure helpers ---------------------------------------------------------------------------------------
def pidfile_path(home: Path, name: str) -> Path:
    return home / "run" / f"{name}.pid"


def log_file(home: Path, name: str) -> Path:
    return home / "logs" / f"{name}.log"


def read_pidfile(path: Path) -> int | None:
    """The pid recorded in ``path``; None when missing, malformed, or now used by another process.

    The file holds ``<pid> <start time>``. Pids are recycled (a pidfile survives a reboot), so a pid whose
    current process started at a different time is not ours, and must never be signalled.
    """
    try:
        fields = path.read_text().split()
    except FileNotFoundError:
        return None
    if len(fields) not in (1, 2) or not all(f.isdigit() for f in fields) or int(fields[0]) <= 0:
        return None
    pid = int(fields[0])
    if len(fields) == 1:  # written before start times were recorded: trusted as it always was
        return pid
    st = _stat(pid)
    if st is not None and st.start_time != int(fields[1]):
        return None
    return pid


def write_pidfile(path: Path, pid: int) -> None:
    """Record ``pid`` and its start time, atomically so a concurrent reader never sees half a file."""
    st = _stat(pid)
    if st is None:
        raise ServiceError(f"process {pid} vanished before its pidfile {path} was written")
    write_text(path, f"{pid} {st.start_time}\n")


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the supervisor uses."""

    state: str
    pgrp: int
    start_time: int  # clock ticks after boot: with the pid, identifies a process


def parse_proc_stat(text: str) -> ProcStat:
    """Parse the content of ``/proc/<pid>/stat``.

    The command name (field 2) is in parentheses and may itself contain spaces or parentheses, so the
    fields are counted from the last closing parenthesis (field 3, the state, comes right after it).
    """
    rest = text[text.rindex(")") + 2 :].split()
    return ProcStat(state=rest[0], pgrp=int(rest[2]), start_time=int(rest[19]))


def _stat(pid: int) -> ProcStat | None:
    try:
        return parse_proc_stat(Path(f"/proc/{pid}/stat").read_text())
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie (a zombie has exited and only awaits reaping)."""
    _reap(pid)
    st = _stat(pid)
    return st is not None and st.state not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        st = _stat(int(entry.name))
        if st is not None and st.pgrp == pgid and st.state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our own child (the test session starts daemons in-process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def port_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound now.

    Binding (not connecting) is the test, so a socket that is bound but not yet listening also counts as
    taken. SO_REUSEADDR matches what the servers themselves do, so connections of a just-stopped server
    lingering in TIME_WAIT do not make the port look busy.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def socket_inodes_for_port(proc_net_tcp: str, port: int) -> set[int]:
    """Inodes of the sockets bound to local ``port`` in a ``/proc/net/tcp{,6}`` table."""
    inodes: set[int] = set()
    for line in proc_net_tcp.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10:
            continue
        local_port = int(cols[1].rsplit(":", 1)[1], 16)
        if local_port == port and cols[9] != "0":
            inodes.add(int(cols[9]))
    return inodes


def port_owner(port: int) -> int | None:
    """Pid of a process holding a TCP socket on ``port``, when /proc lets us see it."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            inodes |= socket_inodes_for_port(Path(table).read_text(), port)
        except OSError:
            continue
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(entry.name)
        except OSError:
            continue
    return None


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    text = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return text[:120] + ("..." if len(text) > 120 else "")


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


# ---- supervision ----------------------------------------------------------------------------------------
def check_ports(service: str, host: str, claims: Iterable[PortClaim]) -> None:
    """Raise :class:`PortInUseError` for the first claimed port that cannot be bound."""
    for claim in claims:
        if not port_free(host, claim.port):
            raise PortInUseError(service, claim.port, claim.setting, port_owner(claim.port), host)


def running_pid(home: Path, name: str) -> int | None:
    """Pid of the supervised process ``name`` if it is alive; a stale pidfile is removed."""
    path = pidfile_path(home, name)
    pid = read_pidfile(path)
    if pid is None:
        path.unlink(missing_ok=True)
        return None
    if pid_alive(pid):
        return pid
    path.unlink(missing_ok=True)
    return None


def start(
    home: Path,
    spec: ProcessSpec,
    healthy: Callable[[], bool],
    timeout: float,
    what: str | None = None,
) -> int:
    """Launch ``spec`` as a daemon and return its pid once ``healthy()`` is true.

    Raises :class:`ServiceError` (after stopping what it started) when the process exits first or the
    deadline passes; the message carries the tail of the log.
    """
    log = log_file(home, spec.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n==== shoplake: starting {spec.name}: {' '.join(spec.argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(  # the daemon outlives us by design: stop() finds it by its pidfile
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=spec.cwd,
            env=dict(spec.env) if spec.env is not None else None,
            start_new_session=True,
            user=spec.user,
            group=spec.user,
            extra_groups=[] if spec.user else None,
        )
    write_pidfile(pidfile_path(home, spec.name), proc.pid)
    label = what or spec.name
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            pidfile_path(home, spec.name).unlink(missing_ok=True)
            raise ServiceError(f"{label} exited with code {code} while starting; last lines of {log}:\n{tail(log)}")
        if healthy():
            return proc.pid
        if time.monotonic() > deadline:
            stop(home, spec.name, timeout=30, sig=spec.stop_signal)
            raise ServiceError(
                f"{label} did not become healthy within {timeout:.0f} s (SHOPLAKE_SERVICE_TIMEOUT); "
                f"last lines of {log}:\n{tail(log)}"
            )
        time.sleep(POLL_INTERVAL)


def stop(home: Path, name: str, timeout: float, sig: signal.Signals = signal.SIGTERM) -> bool:
    """Stop the process group of ``name``; True if something was running. Idempotent."""
    path = pidfile_path(home, name)
    pid = read_pidfile(path)
    if pid is None:
        path.unlink(missing_ok=True)
        return False
    was_running = pid_alive(pid) or bool(group_members(pid))
    if was_running:
        _signal_group(pid, sig)
        if not _wait_group_gone(pid, timeout):
            _signal_group(pid, signal.SIGKILL)
            if not _wait_group_gone(pid, 10):
                raise ServiceError(f"{name} (process group {pid}) survived SIGKILL; inspect it with ps -g {pid}")
    path.unlink(missing_ok=True)
    return was_running


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(pgid)
        if not group_members(pgid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL / 2)
