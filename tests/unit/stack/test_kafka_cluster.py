"""The local Kafka cluster's configuration (KAFKA_BROKERS > 1): nodes, ports, quorum and replication."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.config import ConfigError, Settings
from shoplake.stack import kafka

pytestmark = pytest.mark.unit

BOOTSTRAP = "localhost:19100,localhost:19101,localhost:19102"


def cluster(tmp_path: Path, brokers: str = "3", bootstrap: str = BOOTSTRAP) -> Settings:
    return Settings.from_env(
        {
            "SHOPLAKE_HOME": str(tmp_path),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_CONTROLLER_PORT": "19103",
            "KAFKA_BROKERS": brokers,
        }
    )


def props(settings: Settings, broker: kafka.Broker) -> dict[str, str]:
    return dict(line.split("=", 1) for line in kafka.server_properties(settings, broker).splitlines())


def test_each_node_gets_its_bootstrap_entry_a_controller_port_and_a_folder(tmp_path: Path) -> None:
    nodes = kafka.brokers(cluster(tmp_path))
    assert [(b.node_id, b.port, b.controller_port, b.name) for b in nodes] == [
        (1, 19100, 19103, "kafka"),
        (2, 19101, 19104, "kafka-2"),
        (3, 19102, 19105, "kafka-3"),
    ]
    assert [b.state for b in nodes] == [tmp_path / "kafka", tmp_path / "kafka-2", tmp_path / "kafka-3"]


def test_cluster_nodes_share_a_static_quorum_and_replicate_three_ways(tmp_path: Path) -> None:
    settings = cluster(tmp_path)
    every = [props(settings, b) for b in kafka.brokers(settings)]
    voters = "1@127.0.0.1:19103,2@127.0.0.1:19104,3@127.0.0.1:19105"
    assert {p["controller.quorum.voters"] for p in every} == {voters}
    assert all("controller.quorum.bootstrap.servers" not in p for p in every)
    assert [p["node.id"] for p in every] == ["1", "2", "3"]
    assert every[1]["listeners"] == "PLAINTEXT://127.0.0.1:19101,CONTROLLER://127.0.0.1:19104"
    assert every[2]["log.dirs"] == str(tmp_path / "kafka-3" / "data")
    for p in every:
        assert p["default.replication.factor"] == p["offsets.topic.replication.factor"] == "3"
        assert p["min.insync.replicas"] == p["transaction.state.log.min.isr"] == "2"


def test_one_broker_keeps_the_single_node_layout(tmp_path: Path) -> None:
    settings = cluster(tmp_path, brokers="1", bootstrap="localhost:19100")
    (node,) = kafka.brokers(settings)
    p = props(settings, node)
    assert p["controller.quorum.bootstrap.servers"] == "127.0.0.1:19103" and "controller.quorum.voters" not in p
    assert p["min.insync.replicas"] == p["default.replication.factor"] == "1"


def test_the_service_claims_every_nodes_ports(tmp_path: Path) -> None:
    claims = kafka.SERVICE.ports(cluster(tmp_path))
    assert sorted(c.port for c in claims) == list(range(19100, 19106))


@pytest.mark.parametrize(("brokers", "bootstrap"), [("3", "localhost:19100"), ("0", BOOTSTRAP), ("10", BOOTSTRAP)])
def test_broker_count_must_match_the_bootstrap_list(tmp_path: Path, brokers: str, bootstrap: str) -> None:
    with pytest.raises(ConfigError, match="KAFKA_BROKERS"):
        cluster(tmp_path, brokers=brokers, bootstrap=bootstrap)
