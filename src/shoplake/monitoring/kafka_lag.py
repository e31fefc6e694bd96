"""How far the query reading Kafka is behind it, per partition: broker end offsets minus checkpointed offsets.

Spark's Kafka source does not commit consumer-group offsets; its progress lives in the query checkpoint
(``offsets/<batch>`` holds the end offsets of each planned batch, ``commits/<batch>`` marks it done). So the
lag is read from the latest *committed* batch, with no SparkSession, and compared with the broker's high
watermarks. A partition the query has not read yet counts from the partition's low watermark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shoplake.lakehouse.checkpoints import committed_offsets
from shoplake.pipeline.config import StreamingConfig


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


def measure(cfg: StreamingConfig, timeout: float = 5.0) -> KafkaLag:
    """Lag of the query reading Kafka (``medallion``) on every partition of its topics; an unreachable broker is
    reported, not raised."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    checkpoint = cfg.checkpoint("medallion")
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
