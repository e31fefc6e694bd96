"""Streaming throughput and freshness from the progress JSONL the Spark jobs append to.

The jobs' listener writes one line per micro-batch (see ``shoplake.runtime.progress.ProgressRecorder``); this
module only reads the end of that file, so monitoring never needs a SparkSession or the running job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shoplake.runtime.service import last_progress


@dataclass(frozen=True)
class QueryMetrics:
    query: str
    last_batch_id: int
    last_batch_at: str
    age_seconds: float
    input_rows: int
    processed_rows_per_second: float
    batch_duration_ms: int


@dataclass(frozen=True)
class StreamingMetrics:
    progress_file: str
    queries: dict[str, QueryMetrics] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "progress_file": self.progress_file,
            "healthy": self.healthy,
            "problems": list(self.problems),
            "queries": {name: vars(q) for name, q in self.queries.items()},
        }


def read_metrics(
    metrics_path: Path, expected: tuple[str, ...], *, now: datetime, max_age: timedelta
) -> StreamingMetrics:
    """Latest progress per query; a problem for every expected query with no progress or progress too old."""
    latest = last_progress(metrics_path)
    problems: list[str] = []
    if not metrics_path.is_file():
        problems.append(f"no streaming progress recorded yet ({metrics_path} does not exist)")
    queries: dict[str, QueryMetrics] = {}
    for name, rec in sorted(latest.items()):
        try:
            at = datetime.fromisoformat(str(rec["timestamp"]).replace("Z", "+00:00"))
            queries[name] = QueryMetrics(
                query=name,
                last_batch_id=int(rec["batch_id"]),
                last_batch_at=at.isoformat(),
                age_seconds=round((now - at).total_seconds(), 1),
                input_rows=int(rec["input_rows"]),
                processed_rows_per_second=float(rec["processed_rows_per_second"]),
                batch_duration_ms=int(rec["batch_duration_ms"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"query {name}: malformed progress record ({exc})")
    if metrics_path.is_file():
        for stage in expected:
            q = queries.get(stage)  # each stage runs one query named after it
            if q is None:
                problems.append(f"stage {stage}: no progress recorded")
            elif q.age_seconds > max_age.total_seconds():
                problems.append(f"query {q.query}: last batch {q.last_batch_at} is older than {max_age}")
    return StreamingMetrics(str(metrics_path), queries, tuple(problems))
