"""Moving a lane from the staged pipeline to the fused ``medallion`` query without losing or repeating a record.

Lanes started before ``medallion`` became the default read Kafka with the staged ``bronze`` query (then
``silver`` and ``warehouse`` re-read the table before them). ``medallion`` keeps its own Kafka offsets, so
starting it on such a lane from ``startingOffsets`` would append every record to bronze a second time, and
refusing to start (what this project did first) breaks every upgraded installation. The handover instead:

1. drains the staged queries with a catch-up run, so everything they ever read from Kafka is in bronze,
   silver and PostgreSQL;
2. records where the staged ``bronze`` query stopped (its last committed Kafka offsets, plus "earliest" for
   partitions it never saw) in ``{checkpoints}/medallion-handover.json``, written atomically;
3. moves the staged checkpoints under ``{checkpoints}/retired/`` (kept, never deleted);
4. starts ``medallion`` on a fresh checkpoint from exactly those offsets.

Each step is safe to repeat: a crash before (2) drains again (the staged sinks are idempotent), a crash
after it reuses the recorded offsets, and once ``medallion`` has planned a batch Spark resumes from its own
checkpoint. The way back is refused: the staged ``bronze`` query on a lane ``medallion`` reads for would
start from the beginning of the topics (:func:`refuse_staged_reader`).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from shoplake.files import write_text
from shoplake.streaming.checkpoints import committed_offsets, has_planned_batches
from shoplake.streaming.config import StreamingConfig

log = logging.getLogger(__name__)

STAGED: Final = ("bronze", "silver", "warehouse")
EARLIEST: Final = -2  # Spark's Kafka source: "-2" in a startingOffsets JSON means the partition's earliest offset


class HandoverError(RuntimeError):
    """The lane cannot be moved to the medallion query; the message says why and what to do."""


def handover_path(cfg: StreamingConfig) -> Path:
    return cfg.checkpoint_root / "medallion-handover.json"


def needs_handover(cfg: StreamingConfig) -> bool:
    """A staged lane about to get its first medallion batch (or a handover interrupted half-way)."""
    if has_planned_batches(cfg.checkpoint("medallion")):
        return False
    return handover_path(cfg).is_file() or has_planned_batches(cfg.checkpoint("bronze"))


def refuse_staged_reader(cfg: StreamingConfig) -> None:
    """Refuse to start the staged ``bronze`` query where ``medallion`` reads Kafka (it would re-read the topics)."""
    if has_planned_batches(cfg.checkpoint("medallion")) or handover_path(cfg).is_file():
        raise HandoverError(
            f"{cfg.checkpoint_root} belongs to a lane the 'medallion' query reads Kafka for; starting the staged "
            f"'bronze' query there would re-read the topics into {cfg.bronze_path}. Keep [pipeline].continuous "
            f"on medallion, or give the staged pipeline new tables and checkpoints."
        )


def starting_offsets(
    committed: dict[str, dict[int, int]], partitions: dict[str, list[int]]
) -> dict[str, dict[str, int]]:
    """Spark's startingOffsets JSON for every partition of the subscribed topics.

    Spark requires an entry for each partition; one the staged query never read (a topic or partition added
    later) starts at its earliest offset, so nothing in it is skipped.
    """
    return {
        topic: {str(p): committed.get(topic, {}).get(p, EARLIEST) for p in parts} for topic, parts in partitions.items()
    }


def topic_partitions(cfg: StreamingConfig, timeout: float = 10.0) -> dict[str, list[int]]:
    """The partitions of each subscribed topic, from the broker."""
    from confluent_kafka import Consumer, KafkaException

    consumer = Consumer(
        {"bootstrap.servers": cfg.bootstrap_servers, "group.id": "shoplake-handover", "enable.auto.commit": False}
    )
    try:
        found: dict[str, list[int]] = {}
        for topic in cfg.topics:
            meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise HandoverError(f"topic {topic} not found on {cfg.bootstrap_servers}; cannot hand the lane over")
            found[topic] = sorted(meta.partitions)
        return found
    except KafkaException as exc:
        raise HandoverError(f"Kafka unreachable at {cfg.bootstrap_servers}; cannot hand the lane over: {exc}") from exc
    finally:
        consumer.close()


def _record(cfg: StreamingConfig, drain: Callable[[], object]) -> dict[str, object]:
    """Drain the staged queries, then write down where their Kafka reader stopped (atomically)."""
    log.warning(
        "handing %s over from the staged pipeline to medallion: draining the staged queries first", cfg.checkpoint_root
    )
    try:
        drain()
    except Exception as exc:
        raise HandoverError(
            f"moving {cfg.checkpoint_root} to the medallion query needs the staged queries {STAGED} to finish "
            f"first, and they failed: {exc}. Nothing was moved; fix the cause and start again."
        ) from exc
    batch, committed = committed_offsets(cfg.checkpoint("bronze"))
    record: dict[str, object] = {
        "from": list(STAGED),
        "bronze_batch": batch,
        "starting_offsets": starting_offsets(committed, topic_partitions(cfg)),
        "handed_over_at": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
    }
    write_text(handover_path(cfg), json.dumps(record, indent=2))
    return record


def _retire(cfg: StreamingConfig, stamp: str) -> None:
    """Move the staged checkpoints aside (kept for inspection); a repeat finds them already moved."""
    target = cfg.checkpoint_root / "retired" / f"staged-{stamp}"
    for query in STAGED:
        source = cfg.checkpoint(query)
        if source.exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), str(target / query))


def take_over_from_staged(cfg: StreamingConfig, drain: Callable[[], object]) -> StreamingConfig:
    """The config the medallion query starts with: unchanged, or starting where the staged reader stopped.

    ``drain`` runs the staged queries in catch-up mode (passed in so this module does not start queries).
    """
    if not needs_handover(cfg):
        return cfg
    path = handover_path(cfg)
    record = json.loads(path.read_text()) if path.is_file() else _record(cfg, drain)
    _retire(cfg, str(record["handed_over_at"]))
    log.warning("medallion starts at the staged reader's offsets %s", record["starting_offsets"])
    return replace(cfg, starting_offsets=json.dumps(record["starting_offsets"]))
