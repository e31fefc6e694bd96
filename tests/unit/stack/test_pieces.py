"""Pure pieces of the local stack: pidfiles, /proc parsing, port checks, command lines, ordering."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from shoplake import stack
from shoplake.config import Settings
from shoplake.jvm import MissingDependencyError
from shoplake.stack import control, kafka, mlflow_server, postgres, process, registry, registry_gateway, service

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "SHOPLAKE_HOME": str(tmp_path / "home"),
            "KAFKA_BOOTSTRAP_SERVERS": "localhost:19092",
            "KAFKA_CONTROLLER_PORT": "19093",
            "SCHEMA_REGISTRY_URL": "http://localhost:18081",
            "SCHEMA_REGISTRY_INTERNAL_PORT": "18085",
            "SCHEMA_REGISTRY_MANAGEMENT_PORT": "18086",
            "POSTGRES_PORT": "15432",
            "MLFLOW_TRACKING_URI": "http://localhost:15002",
        }
    )


# ---- pidfiles and /proc -------------------------------------------------------------------------------
def test_pidfile_round_trip_and_garbage(tmp_path: Path) -> None:
    path = process.pidfile_path(tmp_path, "svc")
    assert path == tmp_path / "run" / "svc.pid"
    assert process.read_pidfile(path) is None
    process.write_pidfile(path, os.getpid())
    assert process.read_pidfile(path) == os.getpid()
    for garbage in ("", "abc", "-5 1", "0 1", "12 13 14", "x 13"):
        path.write_text(garbage)
        assert process.read_pidfile(path) is None, garbage
    path.write_text("4242\n")  # the older pid-only format is still understood
    assert process.read_pidfile(path) == 4242


def test_a_recycled_pid_is_not_ours(tmp_path: Path) -> None:
    """Same pid, different start time (e.g. after a reboot): never treat, or signal, it as our daemon."""
    path = process.pidfile_path(tmp_path, "svc")
    process.write_pidfile(path, os.getpid())
    pid, started = path.read_text().split()
    path.write_text(f"{pid} {int(started) + 1}\n")
    assert process.read_pidfile(path) is None
    assert process.running_pid(tmp_path, "svc") is None
    assert process.stop(tmp_path, "svc", timeout=1) is False  # and we are still alive to assert it


def test_running_pid_removes_a_stale_pidfile(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(done.stdout)
    process.pidfile_path(tmp_path, "gone").parent.mkdir(parents=True)
    process.pidfile_path(tmp_path, "gone").write_text(f"{dead_pid} 12345\n")
    assert process.running_pid(tmp_path, "gone") is None
    assert not process.pidfile_path(tmp_path, "gone").exists()
    process.write_pidfile(process.pidfile_path(tmp_path, "me"), os.getpid())
    assert process.running_pid(tmp_path, "me") == os.getpid()


def test_parse_proc_stat_handles_parentheses_and_spaces_in_the_name() -> None:
    line = "1234 (my (odd) name) S 1 777 777 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 1 0 98765 4096 10"
    assert process.parse_proc_stat(line) == process.ProcStat(state="S", pgrp=777, start_time=98765)
    assert process.parse_proc_stat(Path(f"/proc/{os.getpid()}/stat").read_text()).pgrp == os.getpgrp()


def test_stop_without_pidfile_is_a_no_op(tmp_path: Path) -> None:
    assert process.stop(tmp_path, "never-started", timeout=1) is False


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 55501 1
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 55502 1
   2: 0100007F:2382 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 55503 1
   3: 0100007F:2382 0100007F:A001 06 00000000:00000000 00:00000000 00000000     0        0 0 1
"""


def test_socket_inodes_for_port_reads_hex_ports_and_skips_inode_zero() -> None:
    assert process.socket_inodes_for_port(PROC_NET_TCP, 0x2382) == {55501, 55503}
    assert process.socket_inodes_for_port(PROC_NET_TCP, 8080) == {55502}
    assert process.socket_inodes_for_port(PROC_NET_TCP, 1) == set()


# ---- ports ----------------------------------------------------------------------------------------------
def test_port_checks_name_port_setting_and_owner() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not process.port_free("127.0.0.1", port)
        assert process.port_open("127.0.0.1", port)
        assert process.port_owner(port) == os.getpid()
        with pytest.raises(process.PortInUseError) as info:
            process.check_ports("kafka", "127.0.0.1", [process.PortClaim(port, "KAFKA_CONTROLLER_PORT")])
    message = str(info.value)
    assert f"port {port}" in message
    assert "KAFKA_CONTROLLER_PORT" in message
    assert f"pid {os.getpid()}" in message
    assert info.value.owner_pid == os.getpid()
    assert process.port_free("127.0.0.1", port)
    assert not process.port_open("127.0.0.1", port)


def test_a_bound_but_not_listening_socket_counts_as_taken() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not process.port_free("127.0.0.1", port)
        assert not process.port_open("127.0.0.1", port)


def test_tail_returns_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert process.tail(log) == ""
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert process.tail(log, 3) == "line 97\nline 98\nline 99"


# ---- services: registration, order, command lines -------------------------------------------------------
def test_core_services_in_start_order_with_dependencies() -> None:
    assert stack.SERVICES == ("postgres", "kafka", "registry", "mlflow")
    assert control.with_dependencies(["mlflow"]) == ["postgres", "mlflow"]
    assert control.with_dependencies(["mlflow", "kafka", "kafka"]) == ["postgres", "kafka", "mlflow"]


def test_unknown_service_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown service 'kafak'; valid services: postgres, kafka, registry, mlflow"):
        control.validate(["postgres", "kafak"])


def test_log_paths_one_per_process(settings: Settings) -> None:
    assert stack.log_path(settings, "kafka") == settings.home / "logs" / "kafka.log"
    assert control.log_paths(settings, "registry") == [
        settings.home / "logs" / "registry.log",
        settings.home / "logs" / "registry-gateway.log",
    ]


def test_status_table_is_aligned() -> None:
    rows = [
        control.ServiceStatus("postgres", True, 12, "127.0.0.1:5432", "accepts connections"),
        control.ServiceStatus("mlflow", False, None, "http://localhost:5002", "nothing listening"),
    ]
    lines = control.format_table(rows).splitlines()
    assert lines[0].split() == ["SERVICE", "HEALTHY", "PID", "ADDRESS", "DETAIL"]
    assert lines[1].split()[:4] == ["postgres", "yes", "12", "127.0.0.1:5432"]
    assert lines[2].split()[:4] == ["mlflow", "NO", "-", "http://localhost:5002"]
    assert len({line.index(line.split()[3]) for line in lines}) == 1  # ADDRESS column aligned


def test_kafka_properties_single_node(settings: Settings) -> None:
    props = dict(line.split("=", 1) for line in kafka.server_properties(settings).splitlines())
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert props["process.roles"] == "broker,controller"
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["log.dirs"] == str(settings.home / "kafka" / "data")


def test_kafka_cluster_id_is_created_once(settings: Settings) -> None:
    first = kafka.cluster_id(settings)
    assert len(first) == 22
    assert "=" not in first
    assert kafka.cluster_id(settings) == first
    assert kafka.new_cluster_id() != first


def test_kafka_java_command_has_modest_heap_and_shipped_log_config() -> None:
    argv = kafka.java_argv("/j/java", "a.jar:b.jar", "kafka.Kafka", "server.properties")
    assert argv[0] == "/j/java"
    assert "-Xmx1g" in argv
    assert f"-Dlog4j2.configurationFile={kafka.LOG_CONFIG}" in argv
    assert kafka.LOG_CONFIG.is_file()
    assert argv[-3:] == ["a.jar:b.jar", "kafka.Kafka", "server.properties"]


def test_postgres_command_line_and_newest_debian_binaries(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "postgresql"
    for version in ("9.6", "15", "16", "notes"):
        (root / version / "bin").mkdir(parents=True)
    for version in ("9.6", "15"):
        for exe in ("initdb", "postgres"):
            (root / version / "bin" / exe).write_text("")
    assert postgres.find_bin_dir(settings, debian_root=root) == root / "15" / "bin"
    argv = postgres.server_argv(settings, root / "15" / "bin")
    assert argv[argv.index("-p") + 1] == "15432"
    assert "listen_addresses=127.0.0.1" in argv
    assert f"unix_socket_directories={settings.home / 'postgres' / 'socket'}" in argv


def test_postgres_bin_dir_setting_must_hold_the_binaries(tmp_path: Path) -> None:
    bad = Settings.from_env({"SHOPLAKE_HOME": str(tmp_path), "POSTGRES_BIN_DIR": str(tmp_path / "nowhere")})
    with pytest.raises(MissingDependencyError, match="POSTGRES_BIN_DIR"):
        postgres.find_bin_dir(bad)


def test_registry_command_and_gateway(settings: Settings, tmp_path: Path) -> None:
    argv = registry.registry_argv(settings, "/j/java", tmp_path)
    assert "-Dquarkus.http.port=18085" in argv
    assert "-Dquarkus.management.port=18086" in argv
    assert "-Dquarkus.http.host=127.0.0.1" in argv
    h2_file = settings.home / "registry" / "registry"
    assert f"-Dapicurio.datasource.url=jdbc:h2:file:{h2_file};WRITE_DELAY=0" in argv  # every commit flushed at once
    assert argv[-2:] == ["-jar", str(tmp_path / "quarkus-run.jar")]
    gateway = registry.gateway_argv(settings)
    assert gateway[gateway.index("--listen") + 1] == "127.0.0.1:18081"
    assert gateway[gateway.index("--upstream") + 1] == "127.0.0.1:18085"


def test_gateway_prefixes_paths_once_and_drops_hop_by_hop_headers() -> None:
    up = registry_gateway.upstream_path
    assert up("/subjects") == "/apis/ccompat/v7/subjects"
    assert (
        up("/subjects/x-value/versions?normalize=true") == "/apis/ccompat/v7/subjects/x-value/versions?normalize=true"
    )
    assert up("/apis/ccompat/v7/schemas/ids/1") == "/apis/ccompat/v7/schemas/ids/1"
    assert up("schemas") == "/apis/ccompat/v7/schemas"
    headers = [("Content-Type", "application/json"), ("Connection", "keep-alive"), ("Host", "x"), ("X-A", "1")]
    assert registry_gateway.forwardable(headers) == [("Content-Type", "application/json"), ("X-A", "1")]


def test_mlflow_command_is_fast_starting(settings: Settings) -> None:
    argv = mlflow_server.server_argv(settings)
    assert argv[argv.index("--workers") + 1] == "1"
    assert argv[argv.index("--port") + 1] == "15002"
    assert argv[argv.index("--artifacts-destination") + 1] == str(settings.home / "mlflow" / "artifacts")
    assert not any(settings.postgres.password.get_secret_value() in a for a in argv)  # argv is world-readable in /proc
    assert mlflow_server.server_env(settings, {"A": "1"}) == {
        "A": "1",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_BACKEND_STORE_URI": settings.postgres.sqlalchemy_url("mlflow"),
    }


def test_down_also_stops_dependents() -> None:
    with_postgres = control.with_dependents(["postgres"])
    assert with_postgres[:2] == ["postgres", "mlflow"]  # optional services (Airflow) may follow
    assert "kafka" not in with_postgres
    assert "registry" not in with_postgres


def test_unreachable_ancestor_finds_a_closed_directory(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    (closed / "inner").mkdir(parents=True)
    closed.chmod(0o700)
    target = closed / "inner" / "data"
    nobody = 65534  # owns nothing here, in no group: needs the "other" x bit everywhere
    blocked = postgres.unreachable_ancestor(target, nobody, {nobody})
    assert blocked is not None
    assert blocked in (closed, tmp_path, *tmp_path.parents)  # pytest's own base dir may already be 0700
    assert postgres.unreachable_ancestor(target, os.getuid(), set(os.getgroups())) is None


def test_up_starts_independent_services_concurrently_and_reports_the_first_failure(settings: Settings) -> None:
    """Fake services (pure logic: no processes) prove the ordering and error rules of control.up."""
    import threading

    from shoplake.stack.service import Health, Proc, Service

    events: list[str] = []
    both_running = threading.Barrier(2, timeout=5)

    def fake(name: str, requires: tuple[str, ...] = (), fail: bool = False, meet: bool = False) -> Service:
        def launch(_: Settings) -> None:
            events.append(f"start {name}")
            if meet:
                both_running.wait()  # deadlocks (BrokenBarrierError) unless the two start at the same time
            if fail:
                raise process.ServiceError(f"{name} broke")

        return Service(
            name=name,
            requires=requires,
            processes=(Proc(f"fake-{name}"),),
            address=lambda s: "-",
            ports=lambda s: [],
            health=lambda s: Health(False, "down"),
            launch=launch,
        )

    saved = dict(service._REGISTRY)
    try:
        service._REGISTRY.clear()
        for svc in (fake("db"), fake("a", ("db",), meet=True), fake("b", ("db",), meet=True), fake("c", ("a",))):
            service.register(svc)
        assert control.up(settings, ["c", "b"]) == ["db", "a", "b", "c"]
        assert events[0] == "start db"
        assert events[-1] == "start c"

        service._REGISTRY.clear()
        events.clear()
        for svc in (fake("db", fail=True), fake("app", ("db",)), fake("other")):
            service.register(svc)
        with pytest.raises(process.ServiceError, match="db broke"):
            control.up(settings, ["app", "other"])
        assert "start app" not in events
        assert "start other" in events
    finally:
        service._REGISTRY.clear()
        service._REGISTRY.update(saved)


def test_status_exit_code_rows() -> None:
    rows = [
        control.ServiceStatus("postgres", True, 1, "-", ""),
        control.ServiceStatus("airflow", False, None, "-", "not started"),
        control.ServiceStatus("extra", False, 7, "-", "started but wedged"),
    ]
    names = lambda selected: [r.name for r in selected]  # noqa: E731
    assert names(control.must_be_healthy(rows, None, ("postgres",))) == ["postgres", "extra"]
    assert names(control.must_be_healthy(rows, ["airflow"], ("postgres",))) == ["airflow"]
