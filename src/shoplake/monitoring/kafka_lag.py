"""How far the query reading Kafka is behind it, per partition: broker end offsets minus checkpointed offsets.

Spark's Kafka source does not commit consumer-group offsets; its progress lives in the query checkpoint
(``offsets/<batch>`` holds the end offsets of each planned batch, ``commits/<batch>`` marks it done). So the
lag is read from the latest *committed* batch, with no SparkSession, and compared with the broker's high
watermarks. A partition the query has not read yet counts from the partition's low watermark.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoplake.streaming.config import StreamingConfig


@dataclass(frozen=True)
class KafkaLag:
    checkpoint: str
    committed_batch: int | None
    partitions: dict[str, dict[str, int]] = field(default_factory=dict)  # "topic/p" -> start, committed, end, lag
    error: str | None = None

    @property
    def total_lag(self) -> int:
        return sum(p["lag"] for p in self.partitions.values())

    @property
    def committed_total(self) -> int:
        return sum(p["committed"] for p in self.partitions.values())

    @property
    def consumed(self) -> int:
        """Records the bronze query has read and committed (still retained by the topic)."""
        return sum(max(0, p["committed"] - p["start"]) for p in self.partitions.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "committed_batch": self.committed_batch,
            "partitions": self.partitions,
            "total_lag": None if self.error else self.total_lag,
            "committed_total": None if self.error else self.committed_total,
            "consumed": None if self.error else self.consumed,
            "error": self.error,
        }


def committed_sources(checkpoint: Path) -> tuple[int | None, list[dict[str, Any]]]:
    """(latest committed batch, the end offset of each of its sources) from a Structured Streaming checkpoint."""
    commits = checkpoint / "commits"
    batches = sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit()) if commits.is_dir() else []
    if not batches:
        return None, []
    lines = (checkpoint / "offsets" / str(batches[-1])).read_text().splitlines()
    # line 0: version, line 1: batch metadata, then one JSON line per source.
    return batches[-1], [json.loads(line) for line in lines[2:]]


def committed_offsets(checkpoint: Path) -> tuple[int | None, dict[str, dict[int, int]]]:
    """(latest committed batch, topic -> partition -> next offset to read) from a Kafka-source checkpoint."""
    batch, sources = committed_sources(checkpoint)
    offsets: dict[str, dict[int, int]] = {}
    for source in sources:  # {"topic": {"0": offset, ...}}
        for topic, parts in source.items():
            offsets.setdefault(topic, {}).update({int(p): int(o) for p, o in parts.items()})
    return batch, offsets


def measure(cfg: StreamingConfig, timeout: float = 5.0) -> KafkaLag:
    """Lag of the query reading Kafka (``medallion``, or the staged ``bronze``) on every partition of its topics;
    an unreachable broker is reported, not raised."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    checkpoint = cfg.checkpoint(cfg.kafka_reader)
    try:
        batch, committed = committed_offsets(checkpoint)
    except (OSError, ValueError) as exc:
        return KafkaLag(str(checkpoint), None, error=f"unreadable checkpoint {checkpoint}: {exc}")
    consumer = Consumer(
        {"bootstrap.servers": cfg.bootstrap_servers, "group.id": "shoplake-health", "enable.auto.commit": False}
    )
    partitions: dict[str, dict[str, int]] = {}
    try:
        for topic in cfg.topics:
            meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                return KafkaLag(str(checkpoint), batch, error=f"topic {topic} not found on {cfg.bootstrap_servers}")
            for p in sorted(meta.partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout, cached=False)
                done = committed.get(topic, {}).get(p, low)
                partitions[f"{topic}/{p}"] = {"start": low, "committed": done, "end": high, "lag": max(0, high - done)}
    except KafkaException as exc:
        return KafkaLag(str(checkpoint), batch, error=f"Kafka unreachable at {cfg.bootstrap_servers}: {exc}")
    finally:
        consumer.close()
    return KafkaLag(str(checkpoint), batch, partitions)
