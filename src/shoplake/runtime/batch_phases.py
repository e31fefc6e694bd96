"""Where a micro-batch's time goes: wall time per phase, Spark jobs/tasks and code compilations per batch.

Streaming progress (``durationMs.addBatch``) says only how long a ``foreachBatch`` body took. Freshness at a
steady rate is bounded by the body's *fixed* cost - the part that does not shrink with fewer rows - so the
medallion records, per batch, how long each step took (bronze append, validation summary, dedup check,
PostgreSQL upsert, silver append, ...), how many Spark jobs and tasks it ran, and how many classes Spark's
code generator compiled for it (a plan whose generated code changes every batch recompiles every batch).
One JSON line per batch goes to ``batch_phases.jsonl`` next to the progress log. Each phase has its wall time
and the driver JVM's CPU time (local mode: the executors' tasks run in it too), because on a shared machine
wall time moves with other people's load and CPU time does not.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoplake.files import append_line

_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def phases_path(metrics_path: Path) -> Path:
    return metrics_path.with_name("batch_phases.jsonl")


@dataclass
class BatchPhases:
    """Accumulates one batch's phase times; :meth:`write` appends them with the Spark counters."""

    spark: Any
    query: str
    batch_id: int
    phases: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)
    _started: float = field(default_factory=time.perf_counter)
    _jobs_before: frozenset[int] = frozenset()
    _compiles_before: tuple[int, float] = (0, 0.0)
    _stat: Path | None = None

    def __post_init__(self) -> None:
        stat = Path(f"/proc/{self.spark._jvm.java.lang.ProcessHandle.current().pid()}/stat")
        self._stat = stat if stat.is_file() else None  # a remote driver JVM: no CPU figures
        self._jobs_before = self._job_ids()
        self._compiles_before = self._compilations()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started, cpu = time.perf_counter(), self._jvm_cpu_ms()
        jobs_before = self._job_ids()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + (time.perf_counter() - started) * 1000
            self.cpu[name] = self.cpu.get(name, 0.0) + self._jvm_cpu_ms() - cpu
            self.jobs[name] = self.jobs.get(name, 0) + len(self._job_ids() - jobs_before)

    def write(self, path: Path, **extra: Any) -> None:
        jobs = sorted(self._job_ids() - self._jobs_before)
        tracker = self.spark.sparkContext.statusTracker()
        stages = [s for j in jobs if (info := tracker.getJobInfo(j)) is not None for s in info.stageIds]
        tasks = sum(info.numTasks for s in stages if (info := tracker.getStageInfo(s)) is not None)
        count, total_ms = self._compilations()
        line = {
            "query": self.query,
            "batch_id": self.batch_id,
            "total_ms": round((time.perf_counter() - self._started) * 1000, 1),
            "phases_ms": {k: round(v, 1) for k, v in self.phases.items()},
            "jvm_cpu_ms": {k: round(v, 1) for k, v in self.cpu.items()},
            "spark_jobs": len(jobs),
            "spark_stages": len(stages),
            "spark_tasks": tasks,
            "codegen_compilations": count - self._compiles_before[0],
            "codegen_ms_est": round(total_ms - self._compiles_before[1], 1),
            "spark_jobs_by_phase": self.jobs,
            **extra,
        }
        append_line(path, json.dumps(line))

    def _jvm_cpu_ms(self) -> float:
        if self._stat is None:
            return 0.0
        fields = self._stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * _TICK_MS

    def _job_ids(self) -> frozenset[int]:
        """This query run's jobs: the stream thread tags every job with the run id as its job group."""
        group = self.spark.sparkContext.getLocalProperty("spark.jobGroup.id")
        return frozenset(self.spark.sparkContext.statusTracker().getJobIdsForGroup(group))

    def _compilations(self) -> tuple[int, float]:
        """(classes compiled, their total compile ms) so far in this JVM, from Spark's codegen metrics."""
        histogram = self.spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
        snapshot = histogram.getSnapshot()
        return int(histogram.getCount()), float(snapshot.getMean()) * int(histogram.getCount())
