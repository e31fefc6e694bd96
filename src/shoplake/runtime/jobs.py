"""The streaming queries and the two ways to run them.

Queries (one checkpoint each, under ``{SHOPLAKE_HOME}/checkpoints/<query>``):

* ``medallion`` Kafka -> bronze + quarantine + silver + PostgreSQL ``raw.transactions`` in ONE micro-batch:
                each record waits for one trigger, and nothing is read back from Delta but the silver ids the
                dedup needs. See :class:`MedallionBatch`.
* ``gold``      silver's appends -> the three gold aggregates (:mod:`shoplake.pipeline.gold`).
* ``scorer``    silver -> production fraud model -> ``gold/fraud_alerts`` + alerts topic
                (:mod:`shoplake.ml.stream_scoring`; opt-in, it needs a deployed model).

Exactly once everywhere: the medallion's bronze appends are tagged with the checkpoint's query id and the
batch id, and a run's first batch skips its append when bronze already holds it
(:mod:`shoplake.lakehouse.replay_guard`); quarantine appends carry ``txnAppId``/``txnVersion`` (rare, so Delta's
own check is affordable there); silver drops the ``transaction_id``s it already holds (which also makes a
replayed batch append nothing, :mod:`shoplake.pipeline.silver.dedup`); PostgreSQL gets a keyed upsert; gold's
merges carry Delta's transaction identifiers.

:func:`run_catch_up` runs the configured queries one after another with ``availableNow`` and returns when
everything that was in Kafka when it started is in PostgreSQL and gold (orchestrated runs, tests,
benchmarks). :func:`run_continuous` runs them side by side with processing-time triggers until stopped
(``shoplake stream start``). Both use the same query builders, so the two modes cannot drift apart. Before
any query starts, :func:`.lane.check` refuses state an older version left (``shoplake stream reset``).
Every query's progress goes to the metrics log (:mod:`.progress`); the tables they write are created empty
first (:mod:`shoplake.pipeline.tables`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming.query import StreamingQuery
from pyspark.sql.streaming.readwriter import DataStreamWriter

from shoplake.contracts.schemas import schema_dict
from shoplake.files import append_results
from shoplake.lakehouse import log_cleanup
from shoplake.lakehouse.compaction import BackgroundCompaction
from shoplake.pipeline.bronze import bronze_projection
from shoplake.pipeline.config import StreamingConfig
from shoplake.pipeline.gold import start_gold
from shoplake.pipeline.medallion import MedallionBatch, warehouse_target
from shoplake.pipeline.silver.enrich import load_reference
from shoplake.pipeline.sinks.postgres import ensure_table
from shoplake.pipeline.tables import ensure_bronze_table, ensure_quarantine_table, ensure_silver_table
from shoplake.runtime import lane
from shoplake.runtime.maintenance import clean_logs
from shoplake.runtime.progress import attach_progress_recorder

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


# ---- queries ------------------------------------------------------------------------------------------
def kafka_bronze(spark: SparkSession, cfg: StreamingConfig, mode: str) -> DataFrame:
    """The Kafka source of the medallion query, already in the bronze layout.

    In continuous mode a trigger with fewer than ``min_offsets_per_trigger`` new records starts no batch until
    ``max_trigger_delay_s`` has passed: a batch's cost is mostly fixed, so at a trickle one batch every few
    seconds costs a fraction of one a second, while a busy stream still gets a batch every trigger. A catch-up
    takes everything available.
    """
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", cfg.bootstrap_servers)
        .option("subscribe", ",".join(cfg.topics))
        .option("startingOffsets", cfg.starting_offsets)
        .option("maxOffsetsPerTrigger", str(cfg.max_offsets_per_trigger))
        .option("maxRecordsPerPartition", str(cfg.max_records_per_partition))
        .option("failOnDataLoss", str(cfg.fail_on_data_loss).lower())
        .option("includeHeaders", "true")
    )
    if mode == CONTINUOUS:
        reader = reader.option("minOffsetsPerTrigger", str(cfg.min_offsets_per_trigger)).option(
            "maxTriggerDelay", f"{cfg.max_trigger_delay_s}s"
        )
    return bronze_projection(reader.load())


def start_medallion(spark: SparkSession, cfg: StreamingConfig, mode: str) -> StreamingQuery:
    """The medallion query: Kafka -> bronze, quarantine, silver and PostgreSQL in one micro-batch."""
    ensure_bronze_table(spark, cfg)
    ensure_silver_table(spark, cfg)
    ensure_quarantine_table(spark, cfg)
    target = warehouse_target(cfg)
    ensure_table(target)
    body = MedallionBatch(cfg, schema_dict(), load_reference(), target, one_bronze_task=mode == CONTINUOUS)
    writer = (
        kafka_bronze(spark, cfg, mode)
        .writeStream.queryName("medallion")
        .option("checkpointLocation", str(cfg.checkpoint("medallion")))
        .foreachBatch(body)
    )
    return _trigger(writer, mode, cfg.triggers["medallion"]).start()


def start_gold_query(spark: SparkSession, cfg: StreamingConfig, mode: str) -> StreamingQuery:
    ensure_silver_table(spark, cfg)
    trigger: dict[str, Any] = {"availableNow": True} if mode == CATCH_UP else {"processingTime": cfg.triggers["gold"]}
    return start_gold(spark, cfg, trigger)


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
    "gold": lambda spark, cfg, mode: [start_gold_query(spark, cfg, mode)],
    "scorer": lambda spark, cfg, mode: [start_scorer(spark, cfg, mode)],
}


# ---- run modes ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StageResult:
    query: str
    seconds: float
    input_rows: int


def run_catch_up(spark: SparkSession, cfg: StreamingConfig, queries: tuple[str, ...] = PIPELINE) -> list[StageResult]:
    """Process everything available now, stage by stage; raise if a query fails."""
    lane.check(cfg)
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


def clean_logs_recorded(cfg: StreamingConfig) -> None:
    """One Delta log cleanup of the continuous service (:mod:`shoplake.lakehouse.log_cleanup`), recorded.

    A failure only warns.

    Each table's result goes to ``log_cleanup.jsonl`` beside the progress log (how many log entries remain is
    what each append's listing costs). The cleanup is housekeeping: if it fails (a file system error, a table
    being replaced), the tables are as they were and the next interval tries again, so the service keeps running.
    """
    started, at = time.monotonic(), time.time()
    try:
        results = clean_logs(cfg)
    except Exception:
        log.warning("Delta log cleanup failed; the next one runs in %s s", cfg.log_cleanup_interval_s, exc_info=True)
        return
    append_results(log_cleanup.results_path(cfg.metrics_path), results, at_s=at, seconds=time.monotonic() - started)


def run_continuous(
    spark: SparkSession,
    cfg: StreamingConfig,
    stop: threading.Event,
    on_started: Callable[[list[StreamingQuery]], None] | None = None,
    stages: tuple[str, ...] = ALL_STAGES,
) -> None:
    """Run every query with processing-time triggers until ``stop`` is set or a query fails (then raise)."""
    lane.check(cfg)
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
    cleanup_due = time.monotonic() + cfg.log_cleanup_interval_s
    compaction = BackgroundCompaction(spark, cfg)
    compaction_due = time.monotonic() + cfg.compaction_interval_s
    try:
        while not stop.is_set():
            for query in queries:
                if not query.isActive:
                    raise RuntimeError(f"streaming query {query.name} stopped: {query.exception()}")
            if time.monotonic() >= cleanup_due:
                clean_logs_recorded(cfg)
                cleanup_due = time.monotonic() + cfg.log_cleanup_interval_s
            if cfg.compaction_interval_s and time.monotonic() >= compaction_due:
                compaction.start()
                compaction_due = time.monotonic() + cfg.compaction_interval_s
            stop.wait(1.0)
    finally:
        compaction.stop()
        for query in queries:
            if query.isActive:
                query.stop()
