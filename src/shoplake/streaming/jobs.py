"""The streaming queries of the medallion and the two ways to run them.

Queries (one checkpoint each, under ``{SHOPLAKE_HOME}/checkpoints/<query>``):

* ``medallion`` Kafka -> bronze + quarantine + silver + PostgreSQL ``raw.transactions`` in ONE micro-batch
                (the default pipeline): each record waits for one trigger, and nothing is read back from
                Delta but the silver ids the dedup needs. See :class:`MedallionBatch`.
* ``bronze``, ``silver``, ``warehouse``: the staged alternative, three chained queries (Kafka -> bronze;
                bronze -> silver + quarantine; silver -> PostgreSQL), each re-reading the table before it.
                Same writers (:class:`Refiner`), same exactly-once rules; a staged lane is handed over to
                ``medallion`` when that starts (:mod:`.handover`), never the other way round.
* ``gold_*``    silver -> the stateful gold aggregates (:mod:`.gold`).
* ``scorer``    silver -> production fraud model -> ``gold/fraud_alerts`` + alerts topic
                (:mod:`shoplake.ml.stream_scoring`; opt-in, it needs a deployed model).

Exactly once everywhere: the medallion's bronze appends are tagged with the checkpoint's query id and the
batch id, and a run's first batch skips its append when bronze already holds it (:mod:`.replay_guard`);
quarantine appends carry ``txnAppId``/``txnVersion`` (rare, so Delta's own check is affordable there);
silver drops the ``transaction_id``s it already holds (which also makes a replayed batch append nothing,
:mod:`.silver_ids`); PostgreSQL gets a keyed upsert.

:func:`run_catch_up` runs the configured stages one after another with ``availableNow`` and returns when
everything that was in Kafka when it started is in PostgreSQL (orchestrated runs, tests, benchmarks).
:func:`run_continuous` runs them side by side with processing-time triggers until stopped (``shoplake
stream start``). Both use the same query builders, so the two modes cannot drift apart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
from delta.tables import DeltaTable
from pyspark import InheritableThread
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.streaming.listener import StreamingQueryListener
from pyspark.sql.streaming.query import StreamingQuery
from pyspark.sql.streaming.readwriter import DataStreamWriter

from shoplake.contracts.schemas import schema_dict
from shoplake.files import append_line
from shoplake.streaming import table_properties
from shoplake.streaming.batch_phases import BatchPhases, phases_path
from shoplake.streaming.config import StreamingConfig
from shoplake.streaming.decode import Decoder, RegistrySchemas, StaticSchemas
from shoplake.streaming.enrich import ReferenceData, enrich, load_reference
from shoplake.streaming.gold import GOLD_TABLES, start_gold
from shoplake.streaming.handover import STAGED, refuse_staged_reader, take_over_from_staged
from shoplake.streaming.replay_guard import ReplayGuard
from shoplake.streaming.silver_ids import LookupUnavailableError, SilverIds
from shoplake.streaming.transforms import (
    BRONZE_SCHEMA,
    bronze_projection,
    decode_frames,
    quarantine_rows,
    silver_rows,
    unseen_first_copies,
    unseen_first_copies_arrow,
    validate,
)
from shoplake.streaming.warehouse_sink import LOADED_SCHEMA, WarehouseTable, ensure_table, partition_loader, upsert

log = logging.getLogger(__name__)

CATCH_UP: Final = "catch-up"
CONTINUOUS: Final = "continuous"
PIPELINE: Final = ("medallion",)
ALL_STAGES: Final = (*PIPELINE, "gold")


def _trigger(writer: DataStreamWriter, mode: str, interval: str) -> DataStreamWriter:
    if mode == CATCH_UP:
        return writer.trigger(availableNow=True)
    if mode == CONTINUOUS:
        return writer.trigger(processingTime=interval)
    raise ValueError(f"unknown run mode {mode!r}; expected {CATCH_UP} or {CONTINUOUS}")


def _checkpoint_id(checkpoint: Path) -> str:
    """The query id Spark stored in the checkpoint: stable across restarts, new when it is reset.

    Tags the appends (``txnAppId``, bronze's commit metadata) so "batch 7" of a reset checkpoint is never
    mistaken for an old batch 7.
    """
    meta = json.loads((checkpoint / "metadata").read_text())
    return str(meta["id"])


# ---- bronze -------------------------------------------------------------------------------------------
def _kafka_bronze(spark: SparkSession, cfg: StreamingConfig) -> DataFrame:
    """The Kafka source of the queries that read Kafka, already in the bronze layout."""
    kafka = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", cfg.bootstrap_servers)
        .option("subscribe", ",".join(cfg.topics))
        .option("startingOffsets", cfg.starting_offsets)
        .option("maxOffsetsPerTrigger", str(cfg.max_offsets_per_trigger))
        .option("maxRecordsPerPartition", str(cfg.max_records_per_partition))
        .option("failOnDataLoss", str(cfg.fail_on_data_loss).lower())
        .option("includeHeaders", "true")
        .load()
    )
    return bronze_projection(kafka)


def start_bronze(spark: SparkSession, cfg: StreamingConfig, mode: str) -> StreamingQuery:
    refuse_staged_reader(cfg)
    ensure_bronze_table(spark, cfg)
    writer = (
        _kafka_bronze(spark, cfg)
        .writeStream.format("delta")
        .queryName("bronze")
        .outputMode("append")
        .partitionBy("event_date")
        .option("checkpointLocation", str(cfg.checkpoint("bronze")))
    )
    return _trigger(writer, mode, cfg.triggers["bronze"]).start(str(cfg.bronze_path))


# ---- silver + quarantine ------------------------------------------------------------------------------
@dataclass
class Refiner:
    """Bronze rows of one micro-batch -> quarantine + silver (+ PostgreSQL): what both pipelines share.

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
            # unless told otherwise, and a long-running driver's RSS climbed with them (~15 MB/min measured).
            pa.default_memory_pool().release_unused()

    def _write_small_batch(
        self, rows: DataFrame, low_ms: int, high_ms: int, *, phases: BatchPhases, warehouse: WarehouseTable
    ) -> None:
        """A batch of up to ``[warehouse].driver_load_max_rows`` valid rows (continuous mode): one collect.

        The valid rows come to the driver as Arrow once: the dedup lookup takes the ids from that table, and
        the rows PostgreSQL gets are that table minus what the lookup drops, filtered here - no second Spark
        job, which a driver-side load of the ids-only collect below needed (~70 ms per 4,000-event batch).
        The load then runs from the driver in one transaction: the executor path costs ~200 ms more per batch
        (a Python worker round trip), and that fixed cost is what freshness is made of. The silver append
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
                self._append(new)
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
        driver (a 1,000,000-event batch collected whole ran the 2 GB driver out of memory).
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


@dataclass
class SilverBatch(Refiner):
    """``foreachBatch`` body of the staged ``silver`` query (bronze Delta -> silver; runs on the driver)."""

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        app_id = _checkpoint_id(self.cfg.checkpoint("silver"))
        phases = BatchPhases(batch.sparkSession, "silver", batch_id)
        self.refine(batch.drop(*_UNUSED_BRONZE), app_id=app_id, batch_id=batch_id, phases=phases)
        phases.write(phases_path(self.cfg.metrics_path))


# Bronze columns neither silver nor quarantine keep: not decoded, not cached.
_UNUSED_BRONZE: Final = ("headers", "kafka_timestamp_type")


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


def ensure_silver_table(spark: SparkSession, cfg: StreamingConfig) -> None:
    """Create the empty silver table (so readers can start before the first batch) with the exact schema.

    New and existing tables get the per-append cost properties (:mod:`.table_properties`).
    """
    if not DeltaTable.isDeltaTable(spark, str(cfg.silver_path)):
        empty = spark.createDataFrame([], _silver_schema(spark))
        empty.write.format("delta").mode("ignore").partitionBy("event_date").save(str(cfg.silver_path))
    table_properties.apply(str(cfg.silver_path), table_properties.SILVER)


def ensure_quarantine_table(spark: SparkSession, cfg: StreamingConfig) -> None:
    """Create the empty quarantine table: batches without rejects do not write it, but readers expect it."""
    if DeltaTable.isDeltaTable(spark, str(cfg.quarantine_path)):
        return
    empty = spark.createDataFrame([], quarantine_rows(_checked_empty(spark)).schema)
    empty.write.format("delta").mode("ignore").save(str(cfg.quarantine_path))


def _checked_empty(spark: SparkSession) -> DataFrame:
    """The transforms run on an empty bronze frame: the one source of truth for the tables' schemas."""
    bronze = spark.createDataFrame([], BRONZE_SCHEMA).drop(*_UNUSED_BRONZE)
    return validate(decode_frames(bronze, Decoder(schema_dict(), StaticSchemas({}))))


def _silver_schema(spark: SparkSession) -> Any:
    return enrich(silver_rows(_checked_empty(spark)), ReferenceData({}, {}, {})).schema


def ensure_bronze_table(spark: SparkSession, cfg: StreamingConfig) -> None:
    """Create the empty bronze table, so the silver query can start before the first Kafka batch lands.

    New and existing tables get the per-append cost properties (:mod:`.table_properties`).
    """
    if not DeltaTable.isDeltaTable(spark, str(cfg.bronze_path)):
        empty = spark.createDataFrame([], BRONZE_SCHEMA)
        empty.write.format("delta").mode("ignore").partitionBy("event_date").save(str(cfg.bronze_path))
    table_properties.apply(str(cfg.bronze_path), table_properties.BRONZE)


def start_silver(spark: SparkSession, cfg: StreamingConfig, mode: str) -> StreamingQuery:
    ensure_bronze_table(spark, cfg)
    ensure_silver_table(spark, cfg)
    ensure_quarantine_table(spark, cfg)
    writer = (
        spark.readStream.format("delta")
        .load(str(cfg.bronze_path))
        .writeStream.queryName("silver")
        .option("checkpointLocation", str(cfg.checkpoint("silver")))
        .foreachBatch(SilverBatch(cfg, schema_dict(), load_reference(cfg.reference_dir)))
    )
    return _trigger(writer, mode, cfg.triggers["silver"]).start()


# ---- warehouse ----------------------------------------------------------------------------------------
@dataclass
class WarehouseBatch:
    """``foreachBatch`` body of the warehouse query: Arrow batch -> keyed upsert into PostgreSQL."""

    target: WarehouseTable

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        rows = batch.toArrow()
        changed = upsert(self.target, rows)
        log.info("warehouse batch %s: %s rows, %s inserted or changed", batch_id, rows.num_rows, changed)


def warehouse_target(cfg: StreamingConfig) -> WarehouseTable:
    return WarehouseTable(cfg.postgres_dsn, cfg.warehouse_schema, cfg.warehouse_table)


def start_warehouse(spark: SparkSession, cfg: StreamingConfig, mode: str) -> StreamingQuery:
    ensure_silver_table(spark, cfg)
    target = warehouse_target(cfg)
    ensure_table(target)
    writer = (
        spark.readStream.format("delta")
        # Each batch is collected on the driver as Arrow for COPY: bound it (a soft limit, whole files).
        .option("maxBytesPerTrigger", cfg.warehouse_max_bytes_per_trigger)
        .load(str(cfg.silver_path))
        .writeStream.queryName("warehouse")
        .option("checkpointLocation", str(cfg.checkpoint("warehouse")))
        .foreachBatch(WarehouseBatch(target))
    )
    return _trigger(writer, mode, cfg.triggers["warehouse"]).start()


# ---- medallion: the whole path in one micro-batch ------------------------------------------------------
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
    """

    target: WarehouseTable
    _guard: ReplayGuard | None = field(default=None, init=False, repr=False)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        app_id = _checkpoint_id(self.cfg.checkpoint("medallion"))
        phases = BatchPhases(batch.sparkSession, "medallion", batch_id)
        guard = self._bronze_guard(f"bronze-{app_id}")
        raw = batch.persist()
        try:
            bronze = _Concurrent(lambda: self._append_bronze(raw, guard, batch_id, phases))
            try:
                self.refine(
                    raw.drop(*_UNUSED_BRONZE), app_id=app_id, batch_id=batch_id, phases=phases, warehouse=self.target
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
                raw.write.format("delta")
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


def start_medallion(spark: SparkSession, cfg: StreamingConfig, mode: str) -> StreamingQuery:
    """The fused query; a lane the staged pipeline ran is handed over first (:mod:`.handover`)."""
    cfg = take_over_from_staged(cfg, drain=lambda: run_catch_up(spark, cfg, STAGED))
    ensure_bronze_table(spark, cfg)
    ensure_silver_table(spark, cfg)
    ensure_quarantine_table(spark, cfg)
    target = warehouse_target(cfg)
    ensure_table(target)
    body = MedallionBatch(cfg, schema_dict(), load_reference(cfg.reference_dir), target)
    writer = (
        _kafka_bronze(spark, cfg)
        .writeStream.queryName("medallion")
        .option("checkpointLocation", str(cfg.checkpoint("medallion")))
        .foreachBatch(body)
    )
    return _trigger(writer, mode, cfg.triggers["medallion"]).start()


def start_gold_queries(spark: SparkSession, cfg: StreamingConfig, mode: str) -> list[StreamingQuery]:
    ensure_silver_table(spark, cfg)
    trigger: dict[str, Any] = {"availableNow": True} if mode == CATCH_UP else {"processingTime": cfg.triggers["gold"]}
    return [start_gold(spark, cfg, table, trigger) for table in GOLD_TABLES]


def start_scorer(spark: SparkSession, cfg: StreamingConfig, mode: str) -> StreamingQuery:
    """The streaming fraud scorer; a catch-up run without a production model fails here, before any batch."""
    from shoplake.ingestion.topics import ensure_topic
    from shoplake.ml import stream_scoring

    if cfg.settings is None:
        raise ValueError("the scorer needs the settings (load the config with load_streaming_config)")
    if mode == CATCH_UP:
        stream_scoring.require_production(cfg.settings)
    ensure_silver_table(spark, cfg)
    ensure_topic(cfg.settings, cfg.alerts_topic)
    body = stream_scoring.ScorerBatch(
        history=stream_scoring.SilverHistory(cfg.silver_path),
        alerts_path=cfg.gold_fraud_alerts_path,
        tracker=stream_scoring.ProductionTracker(cfg.settings),
        publisher=stream_scoring.AlertPublisher(cfg.bootstrap_servers, cfg.alerts_topic),
    )
    writer = (
        spark.readStream.format("delta")
        .option("maxFilesPerTrigger", cfg.scorer_max_files_per_trigger)
        .load(str(cfg.silver_path))
        .select("transaction_id", "customer_id", "event_time")
        .writeStream.queryName("scorer")
        .option("checkpointLocation", str(cfg.checkpoint("scorer")))
        .foreachBatch(body)
    )
    return _trigger(writer, mode, cfg.triggers["scorer"]).start()


STARTERS: Final[dict[str, Callable[[SparkSession, StreamingConfig, str], list[StreamingQuery]]]] = {
    "medallion": lambda spark, cfg, mode: [start_medallion(spark, cfg, mode)],
    "bronze": lambda spark, cfg, mode: [start_bronze(spark, cfg, mode)],
    "silver": lambda spark, cfg, mode: [start_silver(spark, cfg, mode)],
    "warehouse": lambda spark, cfg, mode: [start_warehouse(spark, cfg, mode)],
    "gold": start_gold_queries,
    "scorer": lambda spark, cfg, mode: [start_scorer(spark, cfg, mode)],
}


# ---- progress metrics ---------------------------------------------------------------------------------
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
        state_rows = sum(int(op.numRowsTotal) for op in (p.stateOperators or []))
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
            "state_rows": state_rows,
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


# ---- run modes ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StageResult:
    query: str
    seconds: float
    input_rows: int


def run_catch_up(spark: SparkSession, cfg: StreamingConfig, queries: tuple[str, ...] = PIPELINE) -> list[StageResult]:
    """Process everything available now, stage by stage; raise if a query fails."""
    attach_progress_recorder(spark, cfg)
    results = []
    for name in queries:
        started = time.monotonic()
        rows = 0
        for query in STARTERS[name](spark, cfg, CATCH_UP):
            query.awaitTermination()
            error = query.exception()
            if error is not None:
                raise RuntimeError(f"streaming query {query.name} failed: {error}")
            rows += sum(int(p.numInputRows) for p in query.recentProgress)
        results.append(StageResult(name, time.monotonic() - started, rows))
    return results


def run_continuous(
    spark: SparkSession,
    cfg: StreamingConfig,
    stop: threading.Event,
    on_started: Callable[[list[StreamingQuery]], None] | None = None,
    stages: tuple[str, ...] = ALL_STAGES,
) -> None:
    """Run every query with processing-time triggers until ``stop`` is set or a query fails (then raise)."""
    attach_progress_recorder(spark, cfg)
    queries = []
    for name in stages:
        # One fair-scheduler pool per stage (the query threads inherit it): a gold batch's tasks share the
        # cores with the medallion's instead of queueing it behind them (``spark.scheduler.mode`` FAIR).
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", name)
        queries += STARTERS[name](spark, cfg, CONTINUOUS)
    spark.sparkContext.setLocalProperty("spark.scheduler.pool", "default")
    if on_started is not None:
        on_started(queries)
    try:
        while not stop.is_set():
            for query in queries:
                if not query.isActive:
                    raise RuntimeError(f"streaming query {query.name} stopped: {query.exception()}")
            stop.wait(1.0)
    finally:
        for query in queries:
            if query.isActive:
                query.stop()
