"""A three-node local KRaft cluster (``KAFKA_BROKERS=3``: replication factor 3, ``min.insync.replicas`` 2).

One node is SIGKILLed in the middle of an ingestion run: every message is still acknowledged once and
readable, with the node down. With a second node killed only one copy could be written, so the
``acks=all`` producer fails loudly (``DeliveryError`` with the tally); once the nodes are back, every
message that was acknowledged is in the topic, nothing is duplicated, and streaming the topic (then dbt)
puts every one of them into silver, PostgreSQL raw and fct_transactions exactly once.

The cluster runs beside the session's single broker, in its own SHOPLAKE_HOME, on the ports just above
the stack's Kafka port (``KAFKA_BOOTSTRAP_SERVERS`` port + 8 .. + 13); it reuses the stack's resolved jars.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from shoplake import stack as local_stack
from shoplake.config import Settings
from shoplake.contracts import schemas, wire
from shoplake.ingestion.avro_encoder import EncodedBatch
from shoplake.ingestion.generator import run_prefix
from shoplake.ingestion.producer import DeliveryError, produce_encoded
from shoplake.ingestion.run import encoded_batches, validate_params
from shoplake.ingestion.topics import ensure_topic
from shoplake.stack import kafka, process
from tests.integration import exactly_once, faults

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

N = 4_000
SCHEMA_ID = 1  # the topic is read back with the contract schema; no registry is involved
START = "2026-05-01T00:00:00Z"


@pytest.fixture(scope="module")
def cluster(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("kafka-cluster")
    (home / "jvm").symlink_to(stack.jvm_dir)  # the jars resolved for the stack (offline, no Maven run)
    base = stack.kafka.port + 8
    settings = stack.with_env(
        SHOPLAKE_HOME=home,
        KAFKA_BOOTSTRAP_SERVERS=",".join(f"{stack.kafka.host}:{base + i}" for i in range(3)),
        KAFKA_CONTROLLER_PORT=str(base + 3),
        KAFKA_BROKERS="3",
        KAFKA_REPLICATION_FACTOR="3",
        KAFKA_TOPIC=f"it-cluster-{uuid.uuid4().hex[:8]}",
    )
    local_stack.up(settings, ["kafka"])
    try:
        yield settings
    finally:
        for node in kafka.brokers(settings):  # throw-away data: no need for a controlled shutdown
            kill(settings, node.node_id)


def settled(settings: Settings) -> bool:
    """Every partition of the topic has a leader and at least ``min.insync.replicas`` (2) in-sync replicas."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers, "log_level": 0})
    try:
        topic = admin.list_topics(settings.kafka.topic, timeout=5).topics[settings.kafka.topic]
    except (KafkaException, KeyError):
        return False
    parts = topic.partitions.values()
    return topic.error is None and bool(parts) and all(p.leader >= 0 and len(p.isrs) >= 2 for p in parts)


def run_batches(settings: Settings, run_key: str, n: int) -> list[EncodedBatch]:
    return list(encoded_batches(validate_params(settings, n, 5, START, run_key=run_key), SCHEMA_ID))


def topic_ids(settings: Settings) -> list[str]:
    """Every transaction id in the topic, read from the beginning (with whatever nodes are up)."""
    after = faults.settled_end_offsets(settings)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"it-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(settings.kafka.topic, p, 0) for p in after])
    ids: list[str] = []

    def read() -> bool:
        for msg in consumer.consume(5000, timeout=1.0):
            assert msg.error() is None, msg.error()
            ids.append(wire.decode_record(msg.value(), schemas.parsed_schema())[1]["transaction_id"])
        return len(ids) >= sum(after.values())

    try:
        faults.wait_for(read, "the topic to be read back", timeout=120, interval=0)
    finally:
        consumer.close()
    return ids


def kill(settings: Settings, node_id: int) -> None:
    process.stop(settings.home, kafka.process_name(node_id), faults.STOP_TIMEOUT, signal.SIGKILL)


def test_one_node_down_loses_nothing_two_down_fail_loudly_and_lose_nothing_acknowledged(cluster: Settings) -> None:
    assert ensure_topic(cluster).partitions == cluster.kafka.partitions
    first, second = run_batches(cluster, "cluster-a", N // 2), run_batches(cluster, "cluster-b", N // 2)

    def one_node_dies_midway() -> Iterator[EncodedBatch]:
        yield from first
        kill(cluster, 2)
        yield from second

    produced = produce_encoded(cluster, one_node_dies_midway())
    assert produced.delivered == N and produced.failed == 0
    ids = topic_ids(cluster)  # read with node 2 still down
    assert len(ids) == len(set(ids)) == N

    kill(cluster, 3)  # one copy left: acks=all with min.insync.replicas=2 cannot be satisfied
    doomed = run_batches(cluster, "cluster-c", 500)
    with pytest.raises(DeliveryError) as failure:
        produce_encoded(cluster, iter(doomed), cluster.kafka.topic, 60.0, **{"message.timeout.ms": 10_000})
    acknowledged = failure.value.result.delivered
    assert failure.value.result.failed == 500 - acknowledged > 0

    kafka.start_brokers(cluster, [2, 3])
    assert kafka.health(cluster).ok
    faults.wait_for(lambda: settled(cluster), "leaders and in-sync replicas for every partition", interval=0.5)
    after = topic_ids(cluster)
    assert len(after) == len(set(after))  # nothing duplicated
    assert set(ids) <= set(after)  # nothing acknowledged before the faults was lost
    late = set(after) - set(ids)
    assert all(i.startswith(f"tx-{run_prefix('cluster-c')}-") for i in late)  # only the failed run's records
    # Every acknowledged record is there; unacknowledged ones may be too (written to the leader before the
    # timeout, replicated once the nodes returned): at-least-once, which silver deduplicates on the id.
    assert len(late) >= acknowledged
    # and the stream + dbt: whatever the topic holds lands in silver, raw and fct_transactions exactly once
    exactly_once.assert_exactly_once(faults.stream_topic(cluster, cluster.kafka.topic), set(after))
