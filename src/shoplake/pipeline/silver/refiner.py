"""Bronze rows of one micro-batch -> quarantine + silver + PostgreSQL.

The medallion query (:class:`shoplake.pipeline.medallion.MedallionBatch`) runs :class:`Refiner` on every
batch; :mod:`shoplake.runtime.jobs` owns the queries and when they run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.pandas.types import from_arrow_schema

from shoplake.pipeline.config import StreamingConfig
from shoplake.pipeline.silver.decode import Decoder, RegistrySchemas
from shoplake.pipeline.silver.dedup import LookupUnavailableError, SilverIds
from shoplake.pipeline.silver.enrich import ReferenceData, enrich
from shoplake.pipeline.silver.transforms import (
    decode_frames,
    quarantine_rows,
    silver_rows,
    unseen_first_copies,
    unseen_first_copies_arrow,
    validate,
)
from shoplake.pipeline.sinks.postgres import LOADED_SCHEMA, WarehouseTable, partition_loader, upsert
from shoplake.runtime.batch_phases import BatchPhases

log = logging.getLogger(__name__)


@dataclass
class Refiner:
    """Bronze rows of one micro-batch -> quarantine + silver (+ PostgreSQL).

    Exactly once without a MERGE: a record is dropped before the append when its ``transaction_id`` is
    already stored - a re-sent record, or every record of a replayed batch (a crash after the silver
    commit, before the checkpoint). No ``txnAppId`` on silver on purpose: Delta answers "was this batch
    committed?" by reconstructing the whole table state (Spark jobs, every batch, growing with the log),
    while the id check gives the same guarantee. The batch's ids are collected on the driver, as Arrow,
    and looked up in silver with delta-rs (:class:`SilverIds`: no Spark job, only the files whose
    ``event_time`` statistics overlap the batch). Rows are shuffled and sorted for
    deduplication only when some id is stored already or repeated within the batch; a table the lookup
    cannot read safely (deletion vectors) falls back to a Spark read of silver's ids.

    With a ``warehouse`` target the new rows are upserted into PostgreSQL *before* the silver commit, from
    the same cached frame: a small batch (continuous mode) collected whole and loaded from the driver in one
    transaction (:meth:`_write_small_batch`), a large one partition by partition on the executors
    (:meth:`_load_warehouse`). Whatever silver holds, PostgreSQL holds with the same values. A crash between
    the two - or after some partitions were loaded - replays the batch; silver lacks its rows, so they are
    computed again and the keyed upsert overwrites the first attempt's copies with exactly what silver then
    commits.
    """

    cfg: StreamingConfig
    reader_schema: dict[str, Any]
    reference: ReferenceData

    def refine(
        self,
        bronze: DataFrame,
        *,
        app_id: str,
        batch_id: int,
        phases: BatchPhases,
        warehouse: WarehouseTable | None = None,
    ) -> None:
        decoder = Decoder(self.reader_schema, RegistrySchemas(self.cfg.schema_registry_url))
        # Cached: the sinks below read it several times, and the decode (Python) must run once per record.
        checked = validate(
            decode_frames(bronze, decoder),
            max_event_age_days=self.cfg.max_event_age_days,
            max_clock_skew_minutes=self.cfg.max_clock_skew_minutes,
        ).persist()
        try:
            valid = sf.col("reason").isNull()
            with phases.phase("decode_validate_summary"):
                summary = checked.agg(
                    sf.count_if(~valid).alias("quarantined"),
                    sf.count_if(valid).alias("valid"),
                    sf.min(sf.when(valid, sf.col("event_time"))).alias("low"),
                    sf.max(sf.when(valid, sf.col("event_time"))).alias("high"),
                ).first()
            if summary is None:
                return
            if summary.quarantined:
                with phases.phase("quarantine_append"):
                    self._quarantine(checked, app_id=app_id, batch_id=batch_id)
            if summary.low is None:
                return
            rows = enrich(silver_rows(checked), self.reference)
            if warehouse is not None and summary.valid <= self.cfg.warehouse_driver_load_max_rows:
                self._write_small_batch(rows, summary.low, summary.high, phases=phases, warehouse=warehouse)
            else:
                self._write_new_rows(rows, summary.low, summary.high, phases=phases, warehouse=warehouse)
        finally:
            checked.unpersist()
            # The batch's Arrow copies are garbage now; mimalloc (pyarrow's pool) keeps freed pages for reuse
            # unless told otherwise, and a long-running driver's RSS climbed with them minute by minute.
            pa.default_memory_pool().release_unused()

    def _write_small_batch(
        self, rows: DataFrame, low_ms: int, high_ms: int, *, phases: BatchPhases, warehouse: WarehouseTable
    ) -> None:
        """A batch of up to ``[warehouse].driver_load_max_rows`` valid rows (continuous mode): one collect.

        The valid rows come to the driver as Arrow once: the dedup lookup takes the ids from that table, and
        the rows PostgreSQL gets are that table minus what the lookup drops, filtered here - no second Spark
        job, which a driver-side load of the ids-only collect below needed. The load then runs from the driver
        in one transaction: the executor path adds a Python worker round trip per batch, and that fixed cost is
        what freshness is made of. The silver append
        reads the same cached frame; when something is dropped, Spark keeps the same first copies
        (:func:`first_per_transaction`'s Kafka order is total), so silver and PostgreSQL hold the same rows.
        """
        rows = rows.persist()
        try:
            with phases.phase("rows_collect"):
                table = rows.toArrow()
            ids = table.column("transaction_id")
            with phases.phase("dedup_check"):
                stored = self._stored_ids(rows.sparkSession, ids, low_ms, high_ms)
            new = rows
            if stored is not None:
                table = unseen_first_copies_arrow(table, stored)
                new = unseen_first_copies(rows, rows.sparkSession.createDataFrame(pa.table({"transaction_id": stored})))
            if table.num_rows == 0:
                return  # a replay of a committed batch: nothing new (and no empty commit)
            with phases.phase("warehouse_upsert"):
                changed = upsert(warehouse, table)
            del table
            log.info("%s rows inserted or changed in PostgreSQL", changed)
            with phases.phase("silver_append"):
                # One task, so one file per event date: a batch of at most driver_load_max_rows rows is a
                # few MB, and split over the Kafka partitions it made several small files a second that every
                # reader of the day and the compaction then paid for (measured in commit 4adc463).
                self._append(new.coalesce(1))
        finally:
            rows.unpersist()

    def _write_new_rows(
        self, rows: DataFrame, low_ms: int, high_ms: int, *, phases: BatchPhases, warehouse: WarehouseTable | None
    ) -> None:
        """Silver rows whose ``transaction_id`` silver lacks -> PostgreSQL (if any), then the silver append.

        Only the ids come to the driver (the dedup lookup needs them); the batch is loaded into PostgreSQL
        partition by partition on the executors (:meth:`_load_warehouse`), so no step holds it in the driver.
        """
        rows = rows.persist()
        try:
            with phases.phase("id_collect"):
                ids = _ids(rows)
            with phases.phase("dedup_check"):
                drop = self._ids_to_drop(rows, ids, low_ms, high_ms)
            if drop is not None:
                with phases.phase("dedup"):
                    deduped = unseen_first_copies(rows, drop).persist()
                    rows.unpersist()
                    rows = deduped
                    ids = _ids(rows)
            if len(ids) == 0:
                return  # a replay of a committed batch: nothing new (and no empty commit)
            if warehouse is not None:
                with phases.phase("warehouse_upsert"):
                    changed = self._load_warehouse(rows, warehouse)
                log.info("%s rows inserted or changed in PostgreSQL", changed)
            with phases.phase("silver_append"):
                self._append(rows)
        finally:
            rows.unpersist()

    def _load_warehouse(self, rows: DataFrame, warehouse: WarehouseTable) -> int:
        """Upsert ``rows`` into PostgreSQL on the executors, one transaction per partition; rows inserted or changed.

        A failure part-way leaves some partitions loaded and silver not committed: the replayed batch computes
        the same rows (silver still lacks them) and the keyed upsert overwrites every one of them with what
        silver then commits - the guarantee one big transaction gave, without collecting the batch on the
        driver (a large catch-up batch collected whole runs the driver out of memory).
        """
        schema = from_arrow_schema(LOADED_SCHEMA)
        loaded = rows.mapInArrow(partition_loader(warehouse), schema).collect()  # one row per partition
        return sum(int(row.changed) for row in loaded)

    def _stored_ids(self, spark: SparkSession, ids: pa.ChunkedArray, low_ms: int, high_ms: int) -> pa.Array | None:
        """:meth:`_ids_to_drop` on the driver: None when every id is new and unique, else the stored ids."""
        try:
            stored = self._lookup(ids, low_ms, high_ms)
        except LookupUnavailableError as exc:
            log.warning("dedup falls back to a Spark read of silver's ids: %s", exc)
            fallback = self._stored_ids_spark(spark, low_ms, high_ms).toArrow().column("transaction_id")
            stored = pc.unique(fallback.filter(pc.is_in(fallback, value_set=pc.unique(ids))))
        return None if _nothing_to_drop(ids, stored) else stored.cast(pa.string())

    def _ids_to_drop(self, rows: DataFrame, ids: pa.ChunkedArray, low_ms: int, high_ms: int) -> DataFrame | None:
        """None when every id is new and unique (the normal case), else the stored ids to anti-join away.

        A batch that repeats an id within itself gets the (possibly empty) stored ids, so the anti-join's
        first-copy step runs too.
        """
        spark = rows.sparkSession
        try:
            stored = self._lookup(ids, low_ms, high_ms)
        except LookupUnavailableError as exc:
            log.warning("dedup falls back to a Spark join: %s", exc)
            return self._stored_ids_spark(spark, low_ms, high_ms)
        return None if _nothing_to_drop(ids, stored) else spark.createDataFrame(pa.table({"transaction_id": stored}))

    def _lookup(self, ids: pa.ChunkedArray, low_ms: int, high_ms: int) -> pa.Array:
        """Which of ``ids`` silver holds (delta-rs); raises :class:`LookupUnavailableError` to fall back to Spark."""
        return self._silver_ids.stored(ids, _utc_datetime(low_ms), _utc_datetime(high_ms))

    @cached_property
    def _silver_ids(self) -> SilverIds:
        return SilverIds(str(self.cfg.silver_path))

    def _quarantine(self, checked: DataFrame, *, app_id: str, batch_id: int) -> None:
        (
            quarantine_rows(checked)
            .write.format("delta")
            .mode("append")
            .option("txnAppId", f"quarantine-{app_id}")
            .option("txnVersion", batch_id)
            .save(str(self.cfg.quarantine_path))
        )

    def _stored_ids_spark(self, spark: SparkSession, low_ms: int, high_ms: int) -> DataFrame:
        """Silver's ids with event times low..high ms, read by Spark (file skipping on the Delta statistics)."""
        return (
            spark.read.format("delta")
            .load(str(self.cfg.silver_path))
            .where(sf.col("event_date").between(_utc_date(low_ms), _utc_date(high_ms)))
            .where(
                sf.col("event_time").between(sf.timestamp_millis(sf.lit(low_ms)), sf.timestamp_millis(sf.lit(high_ms)))
            )
            .select("transaction_id")
        )

    def _append(self, rows: DataFrame) -> None:
        (
            rows.write.format("delta")
            .mode("append")
            # Enrichment columns added by an upgrade extend an existing table instead of failing the batch.
            .option("mergeSchema", "true")
            .save(str(self.cfg.silver_path))
        )


def _ids(rows: DataFrame) -> pa.ChunkedArray:
    """The rows' ``transaction_id``s on the driver: all the dedup lookup needs (~40 bytes a row)."""
    return rows.select("transaction_id").toArrow().column("transaction_id")


def _nothing_to_drop(ids: pa.ChunkedArray, stored: pa.Array) -> bool:
    """Every id is new and unique within the batch: the normal case, which needs no anti-join."""
    return len(stored) == 0 and pc.count_distinct(ids).as_py() == len(ids)


def _utc_datetime(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def _utc_date(epoch_ms: int) -> date:
    return _utc_datetime(epoch_ms).date()
