"""Apache Kafka as one KRaft node (broker and controller in one JVM), run from the resolved jars.

The log directory ``{home}/kafka/data`` is formatted once with a cluster id kept in
``{home}/kafka/cluster.id``; afterwards the broker simply reopens it, so topics and messages survive
restarts. ``server.properties`` is regenerated on every start from the settings (ports, bind address),
but the controller's address is also recorded in the formatted metadata log (``--standalone`` dynamic
quorum): changing ``KAFKA_CONTROLLER_PORT`` after the first start requires deleting ``{home}/kafka``.
Topics are never auto-created: the ingestion code creates its topic with explicit partitions.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from shoplake.config import Settings
from shoplake.jvm import artifacts_dir, classpath, find_java
from shoplake.stack import process
from shoplake.stack.process import PortClaim, ProcessSpec, ServiceError
from shoplake.stack.service import Health, Proc, Service

NAME = "kafka"
HEAP = ("-Xms256m", "-Xmx1g")
LOG_CONFIG = Path(__file__).with_name("kafka-log4j2.xml")


def state_dir(settings: Settings) -> Path:
    return settings.home / "kafka"


def advertised_host(settings: Settings) -> str:
    """The host clients are told to reconnect to: the bind address unless it is a wildcard."""
    return settings.kafka_host if settings.bind_host in ("0.0.0.0", "::") else settings.bind_host


def server_properties(settings: Settings) -> str:
    """The broker+controller configuration for a single node with replication factor 1 everywhere."""
    host, port, ctl = settings.bind_host, settings.kafka_port, settings.kafka_controller_port
    adv = advertised_host(settings)
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{adv}:{ctl}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{ctl}",
        "advertised.listeners": f"PLAINTEXT://{adv}:{port},CONTROLLER://{adv}:{ctl}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(state_dir(settings) / "data"),
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "log.retention.hours": "168",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def cluster_id(settings: Settings) -> str:
    """The id this node was (or will be) formatted with, created once and kept in the state dir."""
    path = state_dir(settings) / "cluster.id"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    cid = new_cluster_id()
    path.write_text(cid + "\n")
    return cid


def java_argv(java: str, cp: str, main: str, *args: str) -> list[str]:
    return [
        java,
        *HEAP,
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG_CONFIG}",
        "-cp",
        cp,
        main,
        *args,
    ]


def _format_once(settings: Settings, java: str, cp: str, props: Path) -> None:
    if (state_dir(settings) / "data" / "meta.properties").is_file():
        return
    log = process.log_file(settings.home, NAME)
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = java_argv(java, cp, "kafka.tools.StorageTool", "format", "--standalone")
    argv += ["-t", cluster_id(settings), "-c", str(props)]
    with log.open("ab") as out:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise ServiceError(f"formatting Kafka storage failed (exit {result.returncode}):\n{process.tail(log)}")


def health(settings: Settings) -> Health:
    """Healthy = the broker answers a metadata request and lists itself."""
    if not process.port_open(settings.bind_host, settings.kafka_port):
        return Health(False, f"nothing listening on {settings.bind_host}:{settings.kafka_port}")
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=3)
    except KafkaException as exc:
        return Health(False, f"metadata request failed: {exc}")
    if not metadata.brokers:
        return Health(False, "metadata lists no broker yet")
    return Health(True, f"{len(metadata.brokers)} broker, {len(metadata.topics)} topics")


def launch(settings: Settings) -> None:
    java = find_java(17)
    cp = classpath(artifacts_dir(settings, "kafka"))
    state = state_dir(settings)
    state.mkdir(parents=True, exist_ok=True)
    props = state / "server.properties"
    props.write_text(server_properties(settings))
    _format_once(settings, java, cp, props)
    spec = ProcessSpec(name=NAME, argv=java_argv(java, cp, "kafka.Kafka", str(props)), cwd=state)
    process.start(settings.home, spec, lambda: health(settings).ok, settings.service_start_timeout, "Kafka")


SERVICE = Service(
    name=NAME,
    requires=(),
    processes=(Proc(NAME),),
    address=lambda s: f"{s.bind_host}:{s.kafka_port}",
    ports=lambda s: [
        PortClaim(s.kafka_port, "KAFKA_BOOTSTRAP_SERVERS"),
        PortClaim(s.kafka_controller_port, "KAFKA_CONTROLLER_PORT"),
    ],
    health=health,
    launch=launch,
)
