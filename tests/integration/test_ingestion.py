"""Ingestion against the real local broker and schema registry (started by the ``stack`` fixture)."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from shoplake.config import Settings
from shoplake.contracts import schemas, wire
from shoplake.contracts.registry import (
    IncompatibleSchemaError,
    RegistryUnavailableError,
    ensure_schema,
    registry_client,
)
from shoplake.ingestion.run import IngestParameterError, ingest
from shoplake.ingestion.topics import KafkaUnavailableError, TopicMismatchError, ensure_topic
from shoplake.ingestion.verify import VerificationError, end_offsets, verify_kafka_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _transaction_ids(settings: Settings, before: dict[int, int], after: dict[int, int]) -> list[str]:
    """Every transaction id written between two offset snapshots, read back from the topic."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"t-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    schema = schemas.parsed_schema()
    want = sum(after[p] - before.get(p, 0) for p in after)
    consumer.assign([TopicPartition(settings.kafka.topic, p, before.get(p, 0)) for p in after])
    ids: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while len(ids) < want and time.monotonic() < deadline:
            for msg in consumer.consume(5000, timeout=1.0):
                assert msg.error() is None
                if msg.offset() < after[msg.partition()]:
                    ids.append(wire.decode_record(msg.value(), schema)[1]["transaction_id"])
    finally:
        consumer.close()
    assert len(ids) == want
    return ids


def test_n_in_equals_n_delivered_equals_n_on_topic(stack: Settings) -> None:
    n = 30_000
    before = end_offsets(stack) if _topic_exists(stack) else {}
    result = ingest(stack, n, 7, "2026-05-01T00:00:00Z", run_key=f"it-{uuid.uuid4().hex}")
    assert result.produce.sent == result.produce.delivered == n and result.produce.failed == 0
    assert result.verify is not None and result.verify.ok
    assert sum(result.verify.growth.values()) == n
    assert result.verify.sampled > 0 and result.verify.schema_ids == [result.schema_id]
    after = end_offsets(stack)
    assert sum(after[p] - result.offsets_before.get(p, 0) for p in after) == n
    assert set(result.offsets_before) >= set(before)
    for p, d in result.produce.partitions.items():
        assert d.last_offset - d.first_offset + 1 == d.delivered
        assert d.first_offset == result.offsets_before[p]
    json.dumps(result.to_dict())  # the DAG passes it through XCom


def _topic_exists(settings: Settings) -> bool:
    try:
        end_offsets(settings)
    except KafkaUnavailableError:
        return False
    return True


def test_rerun_of_the_same_logical_run_reproduces_the_ids(stack: Settings) -> None:
    key = f"rerun-{uuid.uuid4().hex}"
    first = ingest(stack, 3_000, 11, "2026-05-02T00:00:00Z", run_key=key)
    second = ingest(stack, 3_000, 11, "2026-05-02T00:00:00Z", run_key=key)
    other = ingest(stack, 3_000, 11, "2026-05-02T00:00:00Z", run_key=key + "-other")
    ids_1 = _transaction_ids(stack, first.offsets_before, second.offsets_before)
    ids_2 = _transaction_ids(stack, second.offsets_before, other.offsets_before)
    assert sorted(ids_1) == sorted(ids_2) and len(set(ids_1)) == 3_000
    assert first.first_transaction_id == second.first_transaction_id
    assert other.first_transaction_id != first.first_transaction_id


def test_schema_registration_is_idempotent_and_refuses_incompatible_changes(stack: Settings) -> None:
    subject = f"it-{uuid.uuid4().hex}-value"
    v1 = schemas.schema_text()
    first = ensure_schema(stack, v1, subject)
    assert ensure_schema(stack, v1, subject).schema_id == first.schema_id
    assert first.compatibility == "BACKWARD"

    doc = schemas.schema_dict()
    breaking = dict(doc, fields=[*doc["fields"], {"name": "loyalty_tier", "type": "string"}])  # no default
    with pytest.raises(IncompatibleSchemaError, match=subject):
        ensure_schema(stack, json.dumps(breaking), subject)
    retyped = dict(doc, fields=[{**f, "type": "string"} if f["name"] == "amount_cents" else f for f in doc["fields"]])
    with pytest.raises(IncompatibleSchemaError):
        ensure_schema(stack, json.dumps(retyped), subject)
    assert registry_client(stack).get_versions(subject) == [1]

    evolved = dict(doc, fields=[*doc["fields"], {"name": "loyalty_tier", "type": ["null", "string"], "default": None}])
    second = ensure_schema(stack, json.dumps(evolved), subject)
    assert second.schema_id != first.schema_id
    assert len(registry_client(stack).get_versions(subject)) == 2


def test_existing_topic_with_other_partition_count_is_reported(stack: Settings) -> None:
    topic = f"it-{uuid.uuid4().hex}"
    assert ensure_topic(stack, topic).created
    assert not ensure_topic(stack, topic).created
    other = stack.with_env(KAFKA_TOPIC_PARTITIONS=str(stack.kafka.partitions + 1))
    with pytest.raises(TopicMismatchError, match="partitions"):
        ensure_topic(other, topic)


def test_verification_fails_when_the_topic_does_not_match_the_claim(stack: Settings) -> None:
    result = ingest(stack, 500, 3, "2026-05-03T00:00:00Z", run_key=f"claim-{uuid.uuid4().hex}")
    overclaimed = {p: n + 1 for p, n in result.delivered_per_partition.items()}
    with pytest.raises(VerificationError, match="expected"):
        verify_kafka_topic(stack, result.offsets_before, overclaimed)


def test_unreachable_broker_is_a_clear_error_within_seconds(stack: Settings) -> None:
    dead = stack.with_env(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{_free_port()}")
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match="did not answer"):
        ingest(dead, 100, 1, "2026-05-04T00:00:00Z")
    assert time.monotonic() - started < 15


def test_unreachable_registry_is_a_clear_error_within_seconds(stack: Settings) -> None:
    dead = stack.with_env(SCHEMA_REGISTRY_URL=f"http://127.0.0.1:{_free_port()}")
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match="unreachable"):
        ingest(dead, 100, 1, "2026-05-04T00:00:00Z")
    assert time.monotonic() - started < 15


def test_bad_parameters_fail_before_touching_kafka(stack: Settings) -> None:
    before = end_offsets(stack)
    with pytest.raises(IngestParameterError):
        ingest(stack, stack.ingest.max_transactions + 1, 1, "2026-05-04T00:00:00Z")
    with pytest.raises(IngestParameterError):
        ingest(stack.with_env(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"), -1, 1, "2026-05-04T00:00:00Z")
    assert end_offsets(stack) == before
