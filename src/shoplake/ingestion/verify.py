"""Prove that an ingestion run landed: offsets grew by exactly what was delivered, and records decode.

Delivery reports say the broker acknowledged messages; this check looks at the topic itself afterwards,
as a consumer would. Per partition, the end offset must have grown by exactly the delivered count since
the offsets captured before the run (more means someone else wrote concurrently or a run was duplicated;
less means data is missing). A sample from the start and end of each partition's new range is fetched,
unframed and decoded with the schema the *registry* holds for its id - not the local file - so a
consumer-side mismatch shows up here rather than in Spark.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import fastavro
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.schema_registry.error import SchemaRegistryError

from shoplake.config import Settings
from shoplake.contracts import wire
from shoplake.contracts.registry import registered_schema_str, registry_client
from shoplake.ingestion.topics import KAFKA_LOGGER, KafkaUnavailableError


class VerificationError(RuntimeError):
    """The topic does not show what the run claims to have delivered."""

    def __init__(self, message: str, result: VerifyResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class VerifyResult:
    topic: str
    ok: bool
    expected: dict[int, int]
    growth: dict[int, int]
    sampled: int
    schema_ids: list[int]
    problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["expected"] = {str(k): v for k, v in sorted(self.expected.items())}
        out["growth"] = {str(k): v for k, v in sorted(self.growth.items())}
        return out


def _consumer(settings: Settings, timeout: float) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"shoplake-verify-{uuid.uuid4().hex[:8]}",  # never commits; unique so it joins nothing
            "enable.auto.commit": False,
            "socket.connection.setup.timeout.ms": int(timeout * 1000),
            "logger": KAFKA_LOGGER,
        }
    )


def end_offsets(settings: Settings, topic: str | None = None, timeout: float = 10.0) -> dict[int, int]:
    """High watermark of every partition of ``topic`` (the offset the next message will get)."""
    topic = topic or settings.kafka.topic
    consumer = _consumer(settings, timeout)
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None:
            raise KafkaUnavailableError(f"topic {topic!r} is not available: {tmeta.error if tmeta else 'missing'}")
        return {
            p: int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout, cached=False)[1])
            for p in sorted(tmeta.partitions)
        }
    except KafkaException as exc:
        raise KafkaUnavailableError(f"Kafka at {settings.kafka.bootstrap_servers} did not answer: {exc}") from exc
    finally:
        consumer.close()


def verify_kafka_topic(
    settings: Settings,
    before: Mapping[Any, int],
    delivered: Mapping[Any, int],
    *,
    topic: str | None = None,
    sample_per_partition: int = 10,
    timeout: float = 10.0,
) -> VerifyResult:
    """Check offsets grew by exactly ``delivered`` per partition since ``before``; decode a sample.

    Keys may be strings (as they come back from JSON / Airflow XCom). Raises :class:`VerificationError`
    with the full result when anything is off.
    """
    topic = topic or settings.kafka.topic
    start = {int(p): int(o) for p, o in before.items()}
    expected = {int(p): int(n) for p, n in delivered.items()}
    after = end_offsets(settings, topic, timeout)
    problems: list[str] = []
    growth = {p: after[p] - start.get(p, 0) for p in after}
    for p in sorted(set(after) | set(expected)):
        if p not in after:
            problems.append(f"partition {p} received messages but no longer exists")
        elif growth[p] != expected.get(p, 0):
            problems.append(f"partition {p}: end offset grew by {growth[p]}, expected {expected.get(p, 0)}")
    sampled, schema_ids = _decode_sample(
        settings,
        topic,
        start=start,
        after=after,
        per_partition=sample_per_partition,
        timeout=timeout,
        problems=problems,
    )
    result = VerifyResult(topic, not problems, expected, growth, sampled, schema_ids, problems)
    if problems:
        raise VerificationError(f"topic {topic!r} failed verification: " + "; ".join(problems[:5]), result)
    return result


def _decode_sample(
    settings: Settings,
    topic: str,
    *,
    start: Mapping[int, int],
    after: Mapping[int, int],
    per_partition: int,
    timeout: float,
    problems: list[str],
) -> tuple[int, list[int]]:
    """Fetch the first and last ``per_partition // 2`` new messages of each partition and decode them.

    All partitions are read in one assignment per round (heads, then tails), so the cost is two fetch
    round-trips however many partitions there are.
    """
    registry = registry_client(settings)
    schemas: dict[int, Any] = {}
    half = max(1, per_partition // 2)
    ranges = {p: (start.get(p, 0), end) for p, end in after.items() if end > start.get(p, 0)}
    rounds = [
        {p: (lo, min(half, hi - lo)) for p, (lo, hi) in ranges.items()},
        {p: (max(lo + half, hi - half), hi - max(lo + half, hi - half)) for p, (lo, hi) in ranges.items()},
    ]
    consumer = _consumer(settings, timeout)
    sampled = 0
    try:
        for planned in rounds:
            wanted = {p: (offset, count) for p, (offset, count) in planned.items() if count > 0}
            if not wanted:
                continue
            consumer.assign([TopicPartition(topic, p, offset) for p, (offset, _) in wanted.items()])
            got = dict.fromkeys(wanted, 0)
            deadline = time.monotonic() + timeout
            while any(got[p] < wanted[p][1] for p in wanted) and time.monotonic() < deadline:
                for msg in consumer.consume(sum(c for _, c in wanted.values()), timeout=0.5):
                    if msg.error() is not None:
                        problems.append(f"partition {msg.partition()}: {msg.error()}")
                        continue
                    p = msg.partition() or 0
                    if got[p] >= wanted[p][1]:
                        continue
                    got[p] += 1
                    sampled += 1
                    _decode_one(registry, schemas, msg.value(), f"partition {p} offset {msg.offset()}", problems)
            problems.extend(
                f"partition {p}: fetched {got[p]} of {count} messages from offset {offset} within {timeout:g}s"
                for p, (offset, count) in wanted.items()
                if got[p] < count
            )
    except KafkaException as exc:
        raise KafkaUnavailableError(f"could not read back {topic!r}: {exc}") from exc
    finally:
        consumer.close()
    return sampled, sorted(schemas)


def _decode_one(registry: Any, schemas: dict[int, Any], value: bytes | None, where: str, problems: list[str]) -> None:
    try:
        schema_id, _ = wire.decode(value)
        if schema_id not in schemas:
            try:
                schemas[schema_id] = fastavro.parse_schema(json.loads(registered_schema_str(registry, schema_id)))
            except SchemaRegistryError as exc:
                problems.append(f"{where}: schema id {schema_id} is not in the registry ({exc})")
                return
        wire.decode_record(value, schemas[schema_id])
    except wire.WireFormatError as exc:
        problems.append(f"{where}: {exc}")
