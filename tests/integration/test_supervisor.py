"""The generic supervisor with real (tiny) daemons: health wait, fail fast, deadline, group stop."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from shoplake.stack import process
from shoplake.stack.process import ProcessSpec, ServiceError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# A daemon that forks a child into its own process group, then serves HTTP: stop() must end both.
FORKING_SERVER = """
import http.server, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_start_waits_for_health_and_stop_ends_the_whole_group(tmp_path: Path) -> None:
    port = free_port()
    spec = ProcessSpec("web", [sys.executable, "-c", FORKING_SERVER, str(port)], cwd=tmp_path)
    pid = process.start(tmp_path, spec, lambda: process.port_open("127.0.0.1", port), timeout=30)
    assert process.port_open("127.0.0.1", port)
    assert process.read_pidfile(process.pidfile_path(tmp_path, "web")) == pid
    members = process.group_members(pid)
    assert pid in members
    assert len(members) == 2, "the forked child shares the daemon's process group"
    assert "starting web" in process.log_file(tmp_path, "web").read_text()

    assert process.stop(tmp_path, "web", timeout=10) is True
    assert process.group_members(pid) == []
    assert not process.pid_alive(pid)
    assert not process.pidfile_path(tmp_path, "web").exists()
    assert process.port_free("127.0.0.1", port)
    assert process.stop(tmp_path, "web", timeout=10) is False  # idempotent


def test_a_daemon_that_dies_fails_fast_with_its_log(tmp_path: Path) -> None:
    spec = ProcessSpec("crash", [sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"])
    with pytest.raises(ServiceError, match=r"(?s)crash exited with code 3.*boom: bad config"):
        process.start(tmp_path, spec, lambda: False, timeout=60)
    assert not process.pidfile_path(tmp_path, "crash").exists()


def test_a_daemon_that_never_gets_healthy_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    spec = ProcessSpec("stuck", [sys.executable, "-c", "import time; print('waiting', flush=True); time.sleep(600)"])
    with pytest.raises(ServiceError, match=r"(?s)did not become healthy within 1 s.*waiting"):
        process.start(tmp_path, spec, lambda: False, timeout=1)
    assert not process.pidfile_path(tmp_path, "stuck").exists()


def test_sigkill_fallback_for_a_daemon_that_ignores_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(600)"
    )
    spec = ProcessSpec("stubborn", [sys.executable, "-c", code])
    log = process.log_file(tmp_path, "stubborn")
    pid = process.start(tmp_path, spec, lambda: "ready" in log.read_text(), timeout=30)
    assert process.stop(tmp_path, "stubborn", timeout=1) is True
    assert not process.pid_alive(pid)


def test_two_concurrent_starts_of_one_service_launch_it_once(tmp_path: Path) -> None:
    """Two ``shoplake up`` at once: the second waits for the first and finds the service healthy."""
    from concurrent.futures import ThreadPoolExecutor

    from shoplake.config import Settings
    from shoplake.stack import control
    from shoplake.stack.service import Health, Proc, Service

    port = free_port()
    settings = Settings.from_env({"SHOPLAKE_HOME": str(tmp_path)})
    launches: list[int] = []

    def launch(_: Settings) -> None:
        spec = ProcessSpec("tiny", [sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(port)], cwd=tmp_path)
        launches.append(process.start(tmp_path, spec, lambda: process.port_open("127.0.0.1", port), timeout=30))

    def health(_: Settings) -> Health:
        up = process.port_open("127.0.0.1", port)
        return Health(up, "listening" if up else "down")

    svc = Service(
        name="tiny",
        requires=(),
        processes=(Proc("tiny"),),
        address=lambda _: f"127.0.0.1:{port}",
        ports=lambda _: [process.PortClaim(port, "TINY_PORT")],
        health=health,
        launch=launch,
    )
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = sorted(pool.map(lambda _: control.start_service(settings, svc), range(2)))
        assert results == [False, True], "exactly one of the two starts launched the service"
        assert len(launches) == 1
    finally:
        process.stop(tmp_path, "tiny", timeout=10)
        for pid in launches:  # without the lock a second launch overwrote the pidfile: end the orphan too
            if process.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
