"""The continuous service compacts the tables it appends to (bronze, silver, quarantine) while it writes them.

Why: the medallion appends a small file to bronze and one to silver every second in continuous mode, tens of
thousands a day per table (commit 384d6b5). Nothing on the per-batch path
pays for them any more (the dedup check follows silver's commits, :mod:`.file_index`), but every reader that
scans a day does: the ML extract, the scorer catching up, an ad-hoc query, `shoplake stream
maintain` itself. Leaving compaction to that command meant a partition kept every small file until someone ran
it.

What makes it safe beside the running queries:

* Only the tables the queries append to blindly. Delta commits an OPTIMIZE (``dataChange = false``) beside
  blind appends without a conflict, whichever commits first. The gold tables are left out: the gold query
  MERGEs into them and reads the files an OPTIMIZE removes, so its batch would fail; each MERGE leaves one file
  per day it touched anyway.
* Silver's readers skip the commit: streaming reads (gold, the scorer) ignore ``dataChange = false``
  commits, and the dedup lookup follows the removed and added files (:mod:`.file_index`). Bronze's replay
  guard looks only at tagged commits.
* Files of at least ``[maintenance].compaction_min_file_size`` are never rewritten (Delta's
  ``optimize.minFileSize``): a run rewrites what was appended since the last one, and its output is left
  alone afterwards, so every row is rewritten about once, not once per run.
* One output file (one Spark task) at a time, of at most ``compaction_max_file_size`` (Delta's
  ``optimize.maxThreads`` = 1 and ``optimize.maxFileSize``, 1 GB by default): a running task is never
  pre-empted, so a compaction must not hold both cores of a 2-core machine, nor one of them for minutes.
* The removed files stay on disk until VACUUM (`shoplake stream maintain`, 7 days at least): a reader that
  listed them before the commit still reads them.

The runs go on a thread of their own, in the fair-scheduler pool ``maintenance`` (weight 1, no minimum
share), so the medallion's tasks go first whenever both wait; one run at a time, a failure only warns and
the next interval tries again. Each table's result is one line of ``compaction.jsonl`` beside the progress log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from delta.tables import DeltaTable
from pyspark import InheritableThread
from pyspark.sql import SparkSession

from shoplake.config.types import size_bytes
from shoplake.files import append_results
from shoplake.pipeline.config import StreamingConfig

log = logging.getLogger(__name__)

POOL: Final = "maintenance"
JOB_GROUP: Final = "shoplake-compaction"
_CONF: Final = "spark.databricks.delta.optimize."


@dataclass(frozen=True)
class CompactionResult:
    table: str
    files_removed: int
    files_added: int
    bytes_removed: int
    bytes_added: int
    partitions: int  # partitions that had small files to combine


def appended_tables(cfg: StreamingConfig) -> dict[str, Path]:
    """The tables the streaming queries only ever append to: the ones safe to compact while they run."""
    return {"bronze": cfg.bronze_path, "silver": cfg.silver_path, "quarantine": cfg.quarantine_path}


def results_path(metrics_path: Path) -> Path:
    """``compaction.jsonl`` beside the progress log: one line per table and compaction run."""
    return metrics_path.with_name("compaction.jsonl")


def compact(
    spark: SparkSession,
    tables: Mapping[str, Path],
    min_file_size: int,
    max_file_size: int,
    stopping: threading.Event | None = None,
) -> list[CompactionResult]:
    """OPTIMIZE each existing table: its files under ``min_file_size`` bytes into files up to ``max_file_size``.

    ``stopping``: when set, the tables not started yet are left for another time.
    """
    with _session_conf(spark, minFileSize=str(min_file_size), maxFileSize=str(max_file_size), maxThreads="1"):
        results = []
        for name, path in tables.items():
            if stopping is not None and stopping.is_set():
                break
            if DeltaTable.isDeltaTable(spark, str(path)):
                metrics = DeltaTable.forPath(spark, str(path)).optimize().executeCompaction().first()
                results.append(_result(name, metrics["metrics"].asDict(recursive=True) if metrics else {}))
        return results


@contextmanager
def _session_conf(spark: SparkSession, **values: str) -> Iterator[None]:
    """Delta's OPTIMIZE settings for the duration of one compaction; the session's own values after it."""
    previous = {key: spark.conf.get(_CONF + key, None) for key in values}
    for key, value in values.items():
        spark.conf.set(_CONF + key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(_CONF + key)
            else:
                spark.conf.set(_CONF + key, old)


def _result(table: str, metrics: dict[str, Any]) -> CompactionResult:
    return CompactionResult(
        table=table,
        files_removed=int(metrics.get("numFilesRemoved") or 0),
        files_added=int(metrics.get("numFilesAdded") or 0),
        bytes_removed=int((metrics.get("filesRemoved") or {}).get("totalSize") or 0),
        bytes_added=int((metrics.get("filesAdded") or {}).get("totalSize") or 0),
        partitions=int(metrics.get("partitionsOptimized") or 0),
    )


class BackgroundCompaction:
    """The continuous service's compaction: at most one run at a time, on its own thread, cancelled on stop."""

    def __init__(self, spark: SparkSession, cfg: StreamingConfig) -> None:
        self.spark = spark
        self.cfg = cfg
        self._thread: InheritableThread | None = None
        self._stopping = threading.Event()

    def start(self) -> bool:
        """Start a run unless one is still going; True if started."""
        if self._thread is not None and self._thread.is_alive():
            log.info("compaction still running; the next one waits another %s s", self.cfg.compaction_interval_s)
            return False
        self._thread = InheritableThread(target=self._run, name="shoplake-compaction", daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout_s: float = 30.0) -> None:
        """Cancel a running compaction's Spark jobs and wait for its thread: nothing half-committed remains.

        A cancelled OPTIMIZE commits nothing; the files it wrote are unreferenced and VACUUM deletes them.
        """
        self._stopping.set()
        if self._thread is not None and self._thread.is_alive():
            self.spark.sparkContext.cancelJobGroup(JOB_GROUP)
        self.wait(timeout_s)

    def wait(self, timeout_s: float | None = None) -> None:
        """Wait for the running compaction, if any, to end."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        sc = self.spark.sparkContext
        sc.setLocalProperty("spark.scheduler.pool", POOL)
        sc.setJobGroup(JOB_GROUP, "compaction of the appended Delta tables", interruptOnCancel=True)
        started, at = time.monotonic(), time.time()
        try:
            sizes = size_bytes(self.cfg.compaction_min_file_size), size_bytes(self.cfg.compaction_max_file_size)
            results = compact(self.spark, appended_tables(self.cfg), *sizes, stopping=self._stopping)
        except Exception:
            if not self._stopping.is_set():
                log.warning(
                    "compaction failed; the next one runs in %s s", self.cfg.compaction_interval_s, exc_info=True
                )
            return
        append_results(results_path(self.cfg.metrics_path), results, at_s=at, seconds=time.monotonic() - started)
