"""Gold: streaming aggregates over silver that the warehouse, monitoring and the ML model read.

Each aggregate is a watermarked event-time window in ``update`` output mode, written with an idempotent
MERGE on (window, keys) in ``foreachBatch``: the Delta table always holds the current value of every
window (append mode would hold a window back until the watermark passes it, so a catch-up run would never
publish its last hours), and a replayed batch rewrites the same values. Distinct counts use
``approx_count_distinct`` because exact distincts are not supported on streams; the watermark bounds the
state (events later than it are not counted, and the state of closed windows is dropped).

* ``hourly_sales``       per hour x category x merchant country x currency: transactions, amount, fraud.
* ``customer_behaviour`` per customer x hour: transactions, amount, distinct devices / IP countries /
                         merchants (the velocity inputs of the fraud features).
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

from shoplake.streaming.config import StreamingConfig


def hourly_sales(silver: DataFrame) -> DataFrame:
    return silver.groupBy(
        sf.window("event_time", "1 hour").alias("window"), "merchant_category", "merchant_country", "currency"
    ).agg(
        sf.count(sf.lit(1)).alias("transactions"),
        sf.sum("amount_cents").alias("amount_cents"),
        sf.sum(sf.col("is_fraud").cast("long")).alias("fraud_transactions"),
        sf.sum(sf.when(sf.col("is_fraud"), sf.col("amount_cents")).otherwise(0)).alias("fraud_amount_cents"),
        sf.approx_count_distinct("customer_id").alias("approx_customers"),
    )


def customer_behaviour(silver: DataFrame) -> DataFrame:
    return silver.groupBy(sf.window("event_time", "1 hour").alias("window"), "customer_id").agg(
        sf.count(sf.lit(1)).alias("transactions"),
        sf.sum("amount_cents").alias("amount_cents"),
        sf.max("amount_cents").alias("max_amount_cents"),
        sf.approx_count_distinct("device_id").alias("approx_devices"),
        sf.approx_count_distinct("ip_country").alias("approx_ip_countries"),
        sf.approx_count_distinct("merchant_id").alias("approx_merchants"),
        sf.sum(sf.col("is_fraud").cast("long")).alias("fraud_transactions"),
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


@dataclass(frozen=True)
class GoldTable:
    name: str
    build: Callable[[DataFrame], DataFrame]
    keys: tuple[str, ...]
    path: Callable[[StreamingConfig], Path]


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

    path: str
    keys: tuple[str, ...]

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        _upsert(batch.sparkSession, self.path, flatten_window(batch), self.keys)


def _upsert(spark: SparkSession, path: str, rows: DataFrame, keys: tuple[str, ...]) -> None:
    if not DeltaTable.isDeltaTable(spark, path):
        rows.limit(0).write.format("delta").mode("ignore").save(path)
    condition = " AND ".join(f"t.`{k}` = u.`{k}`" for k in keys)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(rows.alias("u"), condition)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def start_gold(spark: SparkSession, cfg: StreamingConfig, table: GoldTable, trigger: dict[str, Any]) -> StreamingQuery:
    """One streaming aggregation per gold table (own checkpoint under ``checkpoints/gold/<name>``)."""
    silver = spark.readStream.format("delta").load(str(cfg.silver_path)).withWatermark("event_time", cfg.watermark)
    return (
        table.build(silver)
        .writeStream.queryName(f"gold_{table.name}")
        .outputMode("update")
        .option("checkpointLocation", str(cfg.checkpoint("gold") / table.name))
        .foreachBatch(GoldWriter(str(table.path(cfg)), table.keys))
        .trigger(**trigger)
        .start()
    )
