"""Reading a Structured Streaming checkpoint without a SparkSession.

Spark's Kafka source does not commit consumer-group offsets: a query's progress lives in its checkpoint
(``offsets/<batch>`` holds the end offsets each planned batch reads up to, ``commits/<batch>`` marks the
batch done). The health report's lag, the data-quality audit and the pipeline handover all need "where is
this query, durably?", so it is read here, once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def committed_sources(checkpoint: Path) -> tuple[int | None, list[dict[str, Any]]]:
    """(latest committed batch, the end offset of each of its sources) from a Structured Streaming checkpoint."""
    commits = checkpoint / "commits"
    batches = sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit()) if commits.is_dir() else []
    if not batches:
        return None, []
    return batches[-1], planned_sources(checkpoint, batches[-1])


def planned_sources(checkpoint: Path, batch: int) -> list[dict[str, Any]]:
    """The end offset of each source that batch ``batch`` was planned to read up to (``offsets/<batch>``)."""
    lines = (checkpoint / "offsets" / str(batch)).read_text().splitlines()
    # line 0: version, line 1: batch metadata, then one JSON line per source.
    return [json.loads(line) for line in lines[2:]]


def committed_offsets(checkpoint: Path) -> tuple[int | None, dict[str, dict[int, int]]]:
    """(latest committed batch, topic -> partition -> next offset to read) from a Kafka-source checkpoint."""
    batch, sources = committed_sources(checkpoint)
    offsets: dict[str, dict[int, int]] = {}
    for source in sources:  # {"topic": {"0": offset, ...}}
        for topic, parts in source.items():
            offsets.setdefault(topic, {}).update({int(p): int(o) for p, o in parts.items()})
    return batch, offsets


def checkpoint_id(checkpoint: Path) -> str:
    """The query id Spark stored in the checkpoint: stable across restarts, new when it is reset.

    Tags the appends (``txnAppId``, bronze's commit metadata) so "batch 7" of a reset checkpoint is never
    mistaken for an old batch 7.
    """
    return str(json.loads((checkpoint / "metadata").read_text())["id"])


def has_planned_batches(checkpoint: Path) -> bool:
    """True once a query has planned a batch there: from then on Spark resumes from it, ignoring startingOffsets."""
    offsets = checkpoint / "offsets"
    return offsets.is_dir() and any(p.name.isdigit() for p in offsets.iterdir())
