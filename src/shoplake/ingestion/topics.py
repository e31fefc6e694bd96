"""Kafka reachability and the transactions topic, created idempotently with explicit partitions.

The broker never auto-creates topics (a typo would otherwise silently create a one-partition topic), so
ingestion creates ``settings.kafka.topic`` itself. Creating it again is a no-op; an existing topic with a
different partition count is reported, not "fixed", because re-partitioning changes key -> partition
mapping for every downstream consumer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from shoplake.config import Settings

KAFKA_LOGGER = logging.getLogger("shoplake.kafka")


class KafkaUnavailableError(RuntimeError):
    """The broker did not answer within the deadline."""


class TopicMismatchError(RuntimeError):
    """The topic exists with a different partition count than configured."""


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: int
    created: bool


def admin_client(settings: Settings, timeout: float = 5.0) -> AdminClient:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "socket.connection.setup.timeout.ms": int(timeout * 1000),
        "reconnect.backoff.max.ms": 1000,
        # librdkafka would print every refused connection to stderr; route it to logging instead (the
        # exception raised here already says what is wrong).
        "logger": KAFKA_LOGGER,
    }
    return AdminClient(config)


def check_kafka(settings: Settings, timeout: float = 5.0) -> dict[str, Any]:
    """Health check: broker ids and topic names, or :class:`KafkaUnavailableError` within ``timeout``."""
    try:
        meta = admin_client(settings, timeout).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"Kafka at {settings.kafka.bootstrap_servers} did not answer within {timeout:g}s ({exc}); "
            "start it with `shoplake up kafka` or fix KAFKA_BOOTSTRAP_SERVERS"
        ) from exc
    return {"brokers": sorted(meta.brokers), "topics": sorted(t for t in meta.topics if not t.startswith("__"))}


def partition_count(settings: Settings, topic: str, timeout: float = 5.0) -> int | None:
    """Number of partitions of ``topic``, or None when it does not exist."""
    try:
        meta = admin_client(settings, timeout).list_topics(topic=topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailableError(f"Kafka at {settings.kafka.bootstrap_servers} did not answer: {exc}") from exc
    t = meta.topics.get(topic)
    if t is None or (t.error is not None and t.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
        return None
    return len(t.partitions)


def ensure_topic(settings: Settings, topic: str | None = None, timeout: float = 10.0) -> TopicInfo:
    """Create ``topic`` (default ``settings.kafka.topic``) unless it exists; verify its partition count."""
    name = topic or settings.kafka.topic
    want = settings.kafka.partitions
    existing = partition_count(settings, name, timeout)
    created = False
    if existing is None:
        admin = admin_client(settings, timeout)  # must outlive the futures: destroying it cancels them
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=want, replication_factor=settings.kafka.replication_factor)],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        try:
            futures[name].result(timeout=timeout)
            created = True
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # lost a race: fine, check below
                raise KafkaUnavailableError(f"could not create topic {name!r}: {exc}") from exc
        existing = _wait_for_partitions(settings, name, timeout)
    if existing != want:
        raise TopicMismatchError(
            f"topic {name!r} has {existing} partitions but KAFKA_TOPIC_PARTITIONS={want}; either set it to "
            f"{existing} or delete the topic deliberately (re-partitioning remaps keys for every consumer)"
        )
    return TopicInfo(name=name, partitions=existing, created=created)


def _wait_for_partitions(settings: Settings, topic: str, timeout: float) -> int:
    """Metadata can lag creation by a moment; poll it (bounded) instead of sleeping."""
    deadline = time.monotonic() + timeout
    while True:
        count = partition_count(settings, topic, timeout)
        if count is not None:
            return count
        if time.monotonic() > deadline:
            raise KafkaUnavailableError(f"topic {topic!r} was created but its metadata did not appear in {timeout}s")
