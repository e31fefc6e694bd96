"""Gold: streaming aggregates over silver that the warehouse, monitoring and the ML model read.

Each aggregate is a watermarked event-time window in ``update`` output mode, written with an idempotent
MERGE on (window, keys) in ``foreachBatch``: the Delta table always holds the current value of every
window (append mode would hold a window back until the watermark passes it, so a catch-up run would never
publish its last hours), and a replayed batch rewrites the same values. Distinct counts use
``approx_count_distinct`` because exact distincts are not supported on streams; the watermark bounds the
state (events later than it are not counted, and the state of closed windows is dropped).

* ``hourly_sales``       per hour x category x merchant country x currency: transactions, amount, fraud.
* ``customer_behaviour`` per customer x hour: transactions, amount, distinct devices / IP countries /
                         merchants (the velocity inputs of the fraud features). Its state counts distincts
                         in register bitmaps that give ``approx_count_distinct``'s exact values
                         (:mod:`.hll_bitmap`); the rare group too large for that is counted again from
                         its values, kept per window beside the table (:mod:`.window_values`).
* ``fraud_rates``        per day x category x merchant country: transactions, frauds, fraud rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.streaming.query import StreamingQuery

from shoplake.streaming import event_windows, hll_bitmap
from shoplake.streaming.batch_phases import BatchPhases, phases_path
from shoplake.streaming.config import StreamingConfig
from shoplake.streaming.window_values import WindowValues


def hourly_sales(silver: DataFrame) -> DataFrame:
    return silver.groupBy(
        event_windows.hour().alias("window"), "merchant_category", "merchant_country", "currency"
    ).agg(
        sf.count(sf.lit(1)).alias("transactions"),
        sf.sum("amount_cents").alias("amount_cents"),
        sf.sum(sf.col("is_fraud").cast("long")).alias("fraud_transactions"),
        sf.sum(sf.when(sf.col("is_fraud"), sf.col("amount_cents")).otherwise(0)).alias("fraud_amount_cents"),
        sf.approx_count_distinct("customer_id").alias("approx_customers"),
    )


# The distinct counts of customer_behaviour, as (source column, published column). Their state is a register
# bitmap (:mod:`.hll_bitmap`), not an HLL++ buffer: a customer-hour holds one or two events, so 500k events
# make ~390k state rows, and three HLL++ buffers made each ~1.4 KB (545 MB written to RocksDB per 500k
# events; with bitmaps ~120 MB) and kept the aggregation off generated code. The published values are the
# same (checked on 500k generated events: every row of the table identical).
CUSTOMER_DISTINCTS: Final = (
    ("device_id", "approx_devices"),
    ("ip_country", "approx_ip_countries"),
    ("merchant_id", "approx_merchants"),
)


def customer_behaviour(silver: DataFrame) -> DataFrame:
    """Per customer-hour; the distinct counts still as register bitmaps (see :func:`customer_behaviour_rows`)."""
    registers = [hll_bitmap.register(column).alias(f"{column}_register") for column, _ in CUSTOMER_DISTINCTS]
    bitmaps = [
        agg for column, _ in CUSTOMER_DISTINCTS for agg in hll_bitmap.register_bitmap(f"{column}_register", column)
    ]
    rows = silver.select(event_windows.hour().alias("window"), "customer_id", "amount_cents", "is_fraud", *registers)
    return rows.groupBy("window", "customer_id").agg(
        sf.count(sf.lit(1)).alias("transactions"),
        sf.sum("amount_cents").alias("amount_cents"),
        sf.max("amount_cents").alias("max_amount_cents"),
        *bitmaps,
        sf.sum(sf.col("is_fraud").cast("long")).alias("fraud_transactions"),
    )


def customer_behaviour_rows(aggregated: DataFrame) -> DataFrame:
    """:func:`customer_behaviour`'s state rows -> the published columns (bitmaps -> approx distinct counts).

    A count is NULL while its group has more than :data:`hll_bitmap.MAX_EXACT_REGISTERS` occupied registers;
    :func:`fill_large_distincts` replaces those after the upsert.
    """
    return aggregated.select(
        "window",
        "customer_id",
        "transactions",
        "amount_cents",
        "max_amount_cents",
        *(hll_bitmap.estimate(column).alias(published) for column, published in CUSTOMER_DISTINCTS),
        "fraud_transactions",
    )


def fraud_rates(silver: DataFrame) -> DataFrame:
    return (
        silver.groupBy(sf.window("event_time", "1 day").alias("window"), "merchant_category", "merchant_country")
        .agg(
            sf.count(sf.lit(1)).alias("transactions"),
            sf.sum(sf.col("is_fraud").cast("long")).alias("fraud_transactions"),
        )
        .withColumn("fraud_rate", sf.col("fraud_transactions") / sf.col("transactions"))
    )


def flatten_window(df: DataFrame) -> DataFrame:
    """``window`` struct -> ``window_start``/``window_end`` columns (plain columns for SQL and dbt)."""
    cols: list[Column | str] = [
        sf.col("window.start").alias("window_start"),
        sf.col("window.end").alias("window_end"),
        *(c for c in df.columns if c != "window"),
    ]
    return df.select(*cols)


def _as_aggregated(aggregated: DataFrame) -> DataFrame:
    return aggregated


@dataclass(frozen=True)
class GoldTable:
    """One gold aggregate: its streaming aggregation, table keys and path.

    ``publish`` turns the aggregation's rows into the table's columns. ``large_distincts`` names the
    (source, published) distinct counts ``publish`` leaves NULL for large groups (:func:`fill_large_distincts`).
    ``checkpoint`` is the query's checkpoint folder under ``checkpoints/gold``: it changes with the layout of
    the aggregation's state, which a checkpoint fixes (Spark refuses a restart with another state schema); a
    new folder re-aggregates silver from its start and upserts the same windows again.
    """

    name: str
    build: Callable[[DataFrame], DataFrame]
    keys: tuple[str, ...]
    path: Callable[[StreamingConfig], Path]
    publish: Callable[[DataFrame], DataFrame] = _as_aggregated
    large_distincts: tuple[tuple[str, str], ...] = ()
    checkpoint: str = ""

    def checkpoint_path(self, cfg: StreamingConfig) -> Path:
        return cfg.checkpoint("gold") / (self.checkpoint or self.name)


GOLD_TABLES: Final = (
    GoldTable(
        "hourly_sales",
        hourly_sales,
        ("window_start", "merchant_category", "merchant_country", "currency"),
        lambda c: c.gold_hourly_sales_path,
    ),
    GoldTable(
        "customer_behaviour",
        customer_behaviour,
        ("window_start", "customer_id"),
        lambda c: c.gold_customer_windows_path,
        publish=customer_behaviour_rows,
        large_distincts=CUSTOMER_DISTINCTS,
        # Was "customer_behaviour" while the state held HLL++ buffers.
        checkpoint="customer_behaviour_bitmaps",
    ),
    GoldTable(
        "fraud_rates",
        fraud_rates,
        ("window_start", "merchant_category", "merchant_country"),
        lambda c: c.gold_fraud_rates_path,
    ),
)


@dataclass(frozen=True)
class GoldWriter:
    """``foreachBatch`` body: upsert the windows this batch updated (runs on the driver)."""

    table: GoldTable
    path: str
    silver_path: str
    # Where the values of the table's large distinct counts are kept (:mod:`.window_values`).
    values_path: str
    # Where each batch's phase times go (:mod:`.batch_phases`): the upsert, and the fill's steps.
    phases_path: Path

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        spark = batch.sparkSession
        phases = BatchPhases(spark, f"gold_{self.table.name}", batch_id)
        # Cached: the upsert reads the rows twice (their windows, then the MERGE) and the fill once more (the
        # groups published NULL), and each read would otherwise run the streaming aggregation again.
        rows = flatten_window(self.table.publish(batch)).persist()
        try:
            with phases.phase("upsert"):
                _upsert(spark, self.path, rows, self.table.keys)
            if self.table.large_distincts:
                columns = ("customer_id", *(source for source, _ in self.table.large_distincts))
                values = WindowValues(spark, self.values_path, self.silver_path, columns)
                fill_large_distincts(self.path, rows, values, self.table.large_distincts, phases)
        finally:
            rows.unpersist()
        phases.write(self.phases_path)


# Gold tables are partitioned by their window: a batch's MERGE names the windows it updates, so it reads and
# rewrites only their partitions. Unpartitioned, every file held every window, and a 4,000-event batch in
# continuous mode copied the whole customer_behaviour table (392,861 rows to update 687; ~19 CPU-s for the
# three tables), a cost that grew with the table.
PARTITION: Final = "window_start"
# Deletion vectors (a MERGE marks the old rows deleted instead of copying a file's unchanged rows) were measured
# and do not pay here: 40 MERGEs of a 4,000-event batch into one customer_behaviour hour (~3,600 customers each,
# up to 20,000 rows) copied up to 16,121 rows per batch without them but cost a median 1.9-2.9 CPU-s, and
# 3.4-5.8 CPU-s with them (no copy, but a new file per batch and a deletion vector rewritten on nearly every
# earlier file of the partition, 40 files by the 40th batch). The rows are small; rewriting the partition's one
# file is cheaper than tracking deletions across many.


def _upsert(spark: SparkSession, path: str, rows: DataFrame, keys: tuple[str, ...]) -> None:
    """Upsert ``rows`` on ``keys`` into the partitions of their windows; the batch that creates the table appends.

    No row can match before the table exists, and a MERGE costs far more than an append: Delta writes its
    source to disk first and joins it with the target twice (a 500k-event catch-up into new tables: 20-28 %
    of gold's CPU). The append creates the table in the same commit, so a crash leaves no table and the
    replayed batch appends again; once the table exists, every batch MERGEs. The MERGE condition lists the
    batch's windows as literals: Delta prunes partitions (and files, by their statistics, in a table created
    unpartitioned by an older version) only on literal predicates of the target, not on the join keys.
    """
    if not DeltaTable.isDeltaTable(spark, path):
        rows.repartition(PARTITION).write.format("delta").partitionBy(PARTITION).mode("append").save(path)
        return
    windows = [row[0] for row in rows.select(PARTITION).distinct().collect()]
    if not windows:
        return
    on_keys = sf.expr(" AND ".join(f"t.`{k}` = u.`{k}`" for k in keys))
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(rows.alias("u"), sf.col(f"t.{PARTITION}").isin(windows) & on_keys)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def fill_large_distincts(
    path: str,
    published: DataFrame,
    values: WindowValues,
    distincts: tuple[tuple[str, str], ...],
    phases: BatchPhases,
) -> None:
    """Fill the distinct counts a register bitmap could not give (NULL) in the rows this batch ``published``.

    Only customer-hours with more than 364 occupied registers (~635 distinct devices, IP countries or merchants)
    are NULL. The groups to fill are found in the batch's own (cached) rows, not by querying the table: that
    query cost 1.3-1.6 s in every batch of the soak, with or without such groups; the rows take 0.2-0.5 s
    (BENCHMARKS.md). A crash between the upsert and this fill fails the batch, and Spark replays it on restart
    (its commit was never written), so the replay publishes the same NULLs again and fills them. With realistic
    traffic there are none. In a dense stream (the freshness benchmark's 2,000 events/s over 20,000 customers)
    heavy customers pass the limit, and every batch that updates them counts them again from their windows'
    values (:class:`.window_values.WindowValues`: copied from silver once per window, then followed from silver's
    change feed; counting from silver itself took 14 -> 37 s per batch over an hour). The counts come from
    silver's rows of those windows, which may include events that arrived behind the watermark and were not
    aggregated; the other columns keep the streaming values.
    """
    missing = " OR ".join(f"`{published_as}` IS NULL" for _, published_as in distincts)
    pending = published.where(missing).select("window_start", "customer_id")
    with phases.phase("fill_pending"):
        windows = [row[0] for row in pending.select("window_start").distinct().collect()]
    if not windows:
        return
    rows = values.rows(windows, phases)
    counts = (
        rows.join(pending, ["window_start", "customer_id"], "left_semi")
        .groupBy("window_start", "customer_id")
        .agg(*(sf.approx_count_distinct(source).alias(published_as) for source, published_as in distincts))
    )
    on_keys = sf.expr("t.window_start = u.window_start AND t.customer_id = u.customer_id")
    with phases.phase("fill_merge"):
        (
            DeltaTable.forPath(published.sparkSession, path)
            .alias("t")
            # The windows as literals, as in :func:`_upsert`: the MERGE reads and rewrites only their partitions.
            .merge(counts.alias("u"), sf.col(f"t.{PARTITION}").isin(windows) & on_keys)
            .whenMatchedUpdate(set={p: f"coalesce(t.`{p}`, u.`{p}`)" for _, p in distincts})
            .execute()
        )


def start_gold(spark: SparkSession, cfg: StreamingConfig, table: GoldTable, trigger: dict[str, Any]) -> StreamingQuery:
    """One streaming aggregation per gold table (own checkpoint under ``checkpoints/gold``)."""
    silver = spark.readStream.format("delta").load(str(cfg.silver_path)).withWatermark("event_time", cfg.watermark)
    return (
        table.build(silver)
        .writeStream.queryName(f"gold_{table.name}")
        .outputMode("update")
        .option("checkpointLocation", str(table.checkpoint_path(cfg)))
        .foreachBatch(
            GoldWriter(
                table,
                str(table.path(cfg)),
                str(cfg.silver_path),
                str(cfg.gold_customer_window_values_path),
                phases_path(cfg.metrics_path),
            )
        )
        .trigger(**trigger)
        .start()
    )
