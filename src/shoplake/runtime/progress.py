"""Per-batch progress metrics of every streaming query, as JSON lines the monitoring and the streaming DAG read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.streaming.listener import StreamingQueryListener

from shoplake.files import append_line
from shoplake.pipeline.config import StreamingConfig


class ProgressRecorder(StreamingQueryListener):
    """Appends one JSON line per micro-batch to ``metrics_path`` for monitoring and the streaming DAG.

    The log rotates at :data:`shoplake.files.LOG_MAX_BYTES` (its readers read across the rotation).
    """

    def __init__(self, metrics_path: Path) -> None:
        self.metrics_path = metrics_path
        metrics_path.parent.mkdir(parents=True, exist_ok=True)

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark's listener API
        return None

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802
        return None

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        return None

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        p = event.progress
        durations = dict(p.durationMs or {})
        line = {
            "query": p.name,
            "query_id": str(p.id),
            "run_id": str(p.runId),
            "batch_id": int(p.batchId),
            "timestamp": p.timestamp,
            "input_rows": int(p.numInputRows),
            "input_rows_per_second": float(p.inputRowsPerSecond or 0.0),
            "processed_rows_per_second": float(p.processedRowsPerSecond or 0.0),
            "batch_duration_ms": int(durations.get("triggerExecution", 0)),
            "add_batch_ms": int(durations.get("addBatch", 0)),
        }
        append_line(self.metrics_path, json.dumps(line))


_RECORDERS: dict[tuple[int, Path], ProgressRecorder] = {}


def attach_progress_recorder(spark: SparkSession, cfg: StreamingConfig) -> ProgressRecorder:
    """Register the JSONL recorder for ``cfg.metrics_path`` once per session (idempotent)."""
    key = (id(spark), cfg.metrics_path)
    if key not in _RECORDERS:
        _RECORDERS[key] = ProgressRecorder(cfg.metrics_path)
        spark.streams.addListener(_RECORDERS[key])
    return _RECORDERS[key]
