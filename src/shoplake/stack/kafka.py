"""Apache Kafka as KRaft nodes (broker and controller in one JVM each), run from the resolved jars.

``KAFKA_BROKERS`` (default 1) nodes run locally; node *i* listens on the *i*-th entry of
``KAFKA_BOOTSTRAP_SERVERS`` and on controller port ``KAFKA_CONTROLLER_PORT + i - 1``. Node 1 keeps its state
in ``{home}/kafka``, node *i* in ``{home}/kafka-<i>``; every node is a voter of the controller quorum, so a
three-node cluster keeps working with one node down (see :func:`server_properties` for the replication).

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
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shoplake.config import Settings
from shoplake.jvm import artifacts_dir, classpath, find_java
from shoplake.stack import process
from shoplake.stack.process import PortClaim, ProcessSpec, ServiceError
from shoplake.stack.service import Health, Proc, Service

NAME = "kafka"
HEAP = ("-Xms256m", "-Xmx1g")
LOG_CONFIG = Path(__file__).with_name("kafka-log4j2.xml")


MAX_BROKERS = 9


@dataclass(frozen=True)
class Broker:
    """One local KRaft node (broker and controller in one JVM) of the cluster ``KAFKA_BROKERS`` asks for."""

    node_id: int  # 1-based
    port: int  # client (PLAINTEXT) port: the node_id-th entry of KAFKA_BOOTSTRAP_SERVERS
    controller_port: int  # KAFKA_CONTROLLER_PORT + node_id - 1
    name: str  # process, pidfile and log name
    state: Path

    @property
    def data_dir(self) -> Path:
        return self.state / "data"


def state_dir(settings: Settings) -> Path:
    """Node 1's folder; it also keeps the cluster id that every node is formatted with."""
    return settings.home / "kafka"


def process_name(node_id: int) -> str:
    return NAME if node_id == 1 else f"{NAME}-{node_id}"


def brokers(settings: Settings) -> list[Broker]:
    """The local nodes: node 1 keeps the single-node names and folder, so one broker is the old layout."""
    servers = settings.kafka.bootstrap_servers.split(",")
    out = []
    for node_id in range(1, settings.kafka.brokers + 1):
        port = int(servers[node_id - 1].strip().rsplit(":", 1)[1])
        state = state_dir(settings) if node_id == 1 else settings.home / process_name(node_id)
        ctl = settings.kafka.controller_port + node_id - 1
        out.append(Broker(node_id, port, ctl, process_name(node_id), state))
    return out


def advertised_host(settings: Settings) -> str:
    """The host clients are told to reconnect to: the bind address unless it is a wildcard."""
    return settings.kafka.host if settings.bind_host in ("0.0.0.0", "::") else settings.bind_host


def server_properties(settings: Settings, broker: Broker | None = None) -> str:
    """The configuration of one node (default: node 1).

    One node: replication factor 1 everywhere and a dynamic quorum of itself. A cluster: a static quorum
    of every node as voter (``controller.quorum.voters``), internal topics replicated to 3 nodes (fewer
    when the cluster is smaller) and ``min.insync.replicas`` 2, so that with ``acks=all`` a write is
    acknowledged only once two nodes hold it: one node can fail without losing an acknowledged message,
    and with two down producers fail instead of writing to a single copy.
    """
    nodes = brokers(settings)
    broker = broker or nodes[0]
    host, port, ctl = settings.bind_host, broker.port, broker.controller_port
    adv = advertised_host(settings)
    replicas = min(3, len(nodes))
    min_isr = min(2, len(nodes))
    quorum = (
        {"controller.quorum.bootstrap.servers": f"{adv}:{ctl}"}
        if len(nodes) == 1
        else {"controller.quorum.voters": ",".join(f"{b.node_id}@{adv}:{b.controller_port}" for b in nodes)}
    )
    props = {
        "process.roles": "broker,controller",
        "node.id": str(broker.node_id),
        **quorum,
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{ctl}",
        "advertised.listeners": f"PLAINTEXT://{adv}:{port},CONTROLLER://{adv}:{ctl}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(broker.data_dir),
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min_isr),
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


def _format_once(settings: Settings, broker: Broker, java: str, cp: str, props: Path) -> None:
    if (broker.data_dir / "meta.properties").is_file():
        return
    log = process.log_file(settings.home, broker.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    # One node formats a dynamic quorum of itself; cluster nodes find their static voters in the properties.
    quorum = ["--standalone"] if settings.kafka.brokers == 1 else []
    argv = java_argv(java, cp, "kafka.tools.StorageTool", "format", *quorum)
    argv += ["-t", cluster_id(settings), "-c", str(props)]
    with log.open("ab") as out:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise ServiceError(f"formatting Kafka storage failed (exit {result.returncode}):\n{process.tail(log)}")


def health(settings: Settings) -> Health:
    """Healthy = a broker answers a metadata request that lists every configured broker."""
    nodes = brokers(settings)
    if not any(process.port_open(settings.bind_host, b.port) for b in nodes):
        ports = ", ".join(str(b.port) for b in nodes)
        return Health(False, f"nothing listening on {settings.bind_host}:{ports}")
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=3)
    except KafkaException as exc:
        return Health(False, f"metadata request failed: {exc}")
    if len(metadata.brokers) < len(nodes):
        return Health(False, f"{len(metadata.brokers)} of {len(nodes)} brokers registered")
    noun = "broker" if len(nodes) == 1 else "brokers"
    return Health(True, f"{len(metadata.brokers)} {noun}, {len(metadata.topics)} topics")


def launch(settings: Settings) -> None:
    start_brokers(settings, [b.node_id for b in brokers(settings)])


def start_brokers(settings: Settings, node_ids: Sequence[int]) -> None:
    """Start the given nodes (formatting new ones) and wait until the whole cluster is healthy.

    The nodes are launched together and only then awaited: a KRaft cluster elects its controller once a
    majority of voters runs, so waiting for node 1 alone before starting node 2 would never succeed.
    Restarting a stopped node of a running cluster is the same call with that node's id.
    """
    java = find_java(17)
    cp = classpath(artifacts_dir(settings, "kafka"))
    wanted = [b for b in brokers(settings) if b.node_id in node_ids]
    for broker in wanted:
        broker.state.mkdir(parents=True, exist_ok=True)
        props = broker.state / "server.properties"
        props.write_text(server_properties(settings, broker))
        _format_once(settings, broker, java, cp, props)
    for broker in wanted:
        argv = java_argv(java, cp, "kafka.Kafka", str(broker.state / "server.properties"))
        spec = ProcessSpec(name=broker.name, argv=argv, cwd=broker.state)
        if settings.kafka.brokers == 1:  # the classic single node: wait for it right here, as always
            process.start(settings.home, spec, lambda: health(settings).ok, settings.service_start_timeout, "Kafka")
            return
        process.start(settings.home, spec, lambda: True, settings.service_start_timeout, f"Kafka {broker.name}")
    _wait_for_cluster(settings, wanted)


def _wait_for_cluster(settings: Settings, started: Sequence[Broker]) -> None:
    deadline = time.monotonic() + settings.service_start_timeout
    while not (state := health(settings)).ok:
        for broker in started:
            if process.running_pid(settings.home, broker.name) is None:
                log = process.log_file(settings.home, broker.name)
                raise ServiceError(
                    f"Kafka {broker.name} exited while starting; last lines of {log}:\n{process.tail(log)}"
                )
        if time.monotonic() > deadline:
            raise ServiceError(
                f"the Kafka cluster did not become healthy within {settings.service_start_timeout:.0f} s "
                f"(SHOPLAKE_SERVICE_TIMEOUT): {state.detail}"
            )
        time.sleep(process.POLL_INTERVAL)


SERVICE = Service(
    name=NAME,
    requires=(),
    # Every possible node: stopping a node that is not configured (no pidfile) is a no-op.
    processes=tuple(Proc(process_name(node_id)) for node_id in range(1, MAX_BROKERS + 1)),
    address=lambda s: ",".join(f"{s.bind_host}:{b.port}" for b in brokers(s)),
    ports=lambda s: [
        claim
        for b in brokers(s)
        for claim in (
            PortClaim(b.port, "KAFKA_BOOTSTRAP_SERVERS"),
            PortClaim(b.controller_port, "KAFKA_CONTROLLER_PORT"),
        )
    ],
    health=health,
    launch=launch,
)
