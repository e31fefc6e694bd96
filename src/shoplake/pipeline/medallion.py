"""The medallion's micro-batch: Kafka rows -> bronze, quarantine, silver and PostgreSQL in one ``foreachBatch``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark import InheritableThread
from pyspark.sql import DataFrame

from shoplake.lakehouse.checkpoints import checkpoint_id
from shoplake.lakehouse.replay_guard import ReplayGuard
from shoplake.pipeline.bronze import UNUSED_BRONZE
from shoplake.pipeline.config import StreamingConfig
from shoplake.pipeline.silver.refiner import Refiner
from shoplake.pipeline.sinks.postgres import WarehouseTable
from shoplake.runtime.batch_phases import BatchPhases, phases_path

log = logging.getLogger(__name__)


def warehouse_target(cfg: StreamingConfig) -> WarehouseTable:
    return WarehouseTable(cfg.postgres_dsn, cfg.warehouse_schema, cfg.warehouse_table)


@dataclass
class MedallionBatch(Refiner):
    """``foreachBatch`` body of the ``medallion`` query: Kafka rows -> bronze, quarantine, PostgreSQL, silver.

    One micro-batch from Kafka to PostgreSQL instead of three chained ones (bronze, then silver re-reading
    bronze, then the warehouse re-reading silver): a record waits for one trigger, and nothing is read back
    from Delta except the silver ids the dedup checks. The Kafka batch is cached once. The bronze append runs
    on a second thread while :meth:`Refiner.refine` writes the rest from the same cached frame: the two
    touch different tables and neither needs the other's result, so the batch takes the longer of the two,
    not their sum (their phase CPU figures overlap accordingly). Bronze keeps every record exactly once
    through :class:`ReplayGuard` (a replayed batch's append is skipped); the batch fails if either side does.

    ``one_bronze_task`` (continuous mode) writes a batch's bronze rows in one task: one file per date
    partition instead of one per Kafka partition. A second's records are well under a MB, and a file per
    Kafka partition every second left thousands of small files for every reader and the compaction
    (measured in commit 4adc463). The batch's size is not known
    before the append (it runs beside the decode), so a large batch after a restart is written by one task
    too - on one core while the decode has the other, into files the compaction leaves alone. Catch-up keeps
    a task per Kafka range: there the append is a large share of the batch and wants both cores.
    """

    target: WarehouseTable
    one_bronze_task: bool = False
    _guard: ReplayGuard | None = field(default=None, init=False, repr=False)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        app_id = checkpoint_id(self.cfg.checkpoint("medallion"))
        phases = BatchPhases(batch.sparkSession, "medallion", batch_id)
        guard = self._bronze_guard(f"bronze-{app_id}")
        raw = batch.persist()
        try:
            bronze = _Concurrent(lambda: self._append_bronze(raw, guard, batch_id, phases))
            try:
                self.refine(
                    raw.drop(*UNUSED_BRONZE), app_id=app_id, batch_id=batch_id, phases=phases, warehouse=self.target
                )
            finally:
                bronze.result()
        except BaseException:
            guard.forget()
            raise
        finally:
            with phases.phase("unpersist"):
                raw.unpersist()
        phases.write(phases_path(self.cfg.metrics_path))

    def _bronze_guard(self, app_id: str) -> ReplayGuard:
        if self._guard is None or self._guard.app_id != app_id:
            self._guard = ReplayGuard(str(self.cfg.bronze_path), app_id)
        return self._guard

    def _append_bronze(self, raw: DataFrame, guard: ReplayGuard, batch_id: int, phases: BatchPhases) -> None:
        with phases.phase("bronze_append"):
            if guard.committed(batch_id):
                log.info("bronze already holds batch %s (a replay): append skipped", batch_id)
                return
            (
                (raw.coalesce(1) if self.one_bronze_task else raw)
                .write.format("delta")
                .mode("append")
                .partitionBy("event_date")
                .option("userMetadata", guard.user_metadata(batch_id))
                .save(str(self.cfg.bronze_path))
            )
            guard.record(batch_id)


class _Concurrent:
    """Runs ``work`` on a thread that inherits the caller's Spark local properties (job group, pool)."""

    def __init__(self, work: Callable[[], None]) -> None:
        self._error: BaseException | None = None

        def run() -> None:
            try:
                work()
            except BaseException as exc:  # handed to the caller in result()
                self._error = exc

        self._thread = InheritableThread(target=run, daemon=True)
        self._thread.start()

    def result(self) -> None:
        """Wait for the work; raise what it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
