"""Gold: aggregates over silver that monitoring and analysts read, added to from each batch of new silver rows.

One streaming query (``gold``) follows silver's appends. Each micro-batch aggregates only its own rows with
plain batch aggregations and merges them into the three tables, one MERGE each: counts and sums add, maxima
take the larger, distinct counts union their HyperLogLog sketches. There is no streaming state and no
watermark, so an event that arrives late is added to its window whenever it comes.

Exactly once: each MERGE (or the first append) carries the query's checkpoint id and the batch id as Delta's
transaction identifiers (``txnAppId``/``txnVersion``); a batch replayed after a crash skips every table that
already holds it and applies the rest.

* ``hourly_sales``       per hour x category x merchant country x currency: transactions, amount, fraud,
                         distinct customers.
* ``customer_behaviour`` per customer x hour: transactions, amount, largest amount, distinct devices / IP
                         countries / merchants (the velocity inputs of the fraud features), fraud.
* ``fraud_rates``        per day x category x merchant country: transactions, frauds, fraud rate.

Distinct counts (``approx_*``) are the estimates of Spark's DataSketches HLL sketches (``hll_sketch_agg``,
lgConfigK 12: a relative standard error of ~1.6 %, and the count itself while a group holds a few hundred
values or fewer). The sketches are kept beside them (``*_sketch``), so a reader can union them over any
coarser grain (``hll_union_agg``). Tables are partitioned by ``event_date`` (the window's UTC date): a
partition holds a day of data, and a MERGE rewrites only the days its batch touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from delta.tables import DeltaTable
from deltalake import DeltaTable as LogTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.streaming.query import StreamingQuery

from shoplake.lakehouse.checkpoints import checkpoint_id
from shoplake.pipeline.config import StreamingConfig
from shoplake.pipeline.tables import create_empty
from shoplake.runtime.batch_phases import BatchPhases, phases_path

PARTITION: Final = "event_date"
WINDOW_COLUMNS: Final = ("window_start", "window_end", PARTITION)
# Delta's session settings for idempotent DML: the MERGE's commit records (app id, version), and Delta skips a
# MERGE whose version is not above the one recorded for that app id.
_TXN_APP_ID: Final = "spark.databricks.delta.write.txnAppId"
_TXN_VERSION: Final = "spark.databricks.delta.write.txnVersion"


@dataclass(frozen=True)
class Measure:
    """A gold column: how a batch's rows aggregate into it, and how it merges with the table's value.

    Both are SQL: ``aggregate`` over silver's columns, ``merge`` over the table's row ``t`` and the batch's ``u``.
    """

    name: str
    aggregate: str
    merge: str


@dataclass(frozen=True)
class Derived:
    """A gold column computed from the measures of its row: ``sql`` names them as ``{measure}``."""

    name: str
    sql: str


def count(name: str) -> Measure:
    return Measure(name, "count(1)", f"t.`{name}` + u.`{name}`")


def total(name: str, value: str) -> Measure:
    return Measure(name, f"sum({value})", f"t.`{name}` + u.`{name}`")


def largest(name: str, value: str) -> Measure:
    return Measure(name, f"max({value})", f"greatest(t.`{name}`, u.`{name}`)")


def distinct(name: str, source: str) -> tuple[Measure, Derived]:
    """``name`` estimates the distinct values of ``source`` from the sketch ``{name}_sketch``."""
    sketch = f"{name}_sketch"
    return (
        Measure(sketch, f"hll_sketch_agg(`{source}`)", f"hll_union(t.`{sketch}`, u.`{sketch}`)"),
        Derived(name, f"hll_sketch_estimate({{{sketch}}})"),
    )


@dataclass(frozen=True)
class GoldTable:
    """One gold aggregate: its window, keys, columns and path."""

    name: str
    window: str
    keys: tuple[str, ...]
    measures: tuple[Measure, ...]
    derived: tuple[Derived, ...]
    path: Callable[[StreamingConfig], Path]

    def aggregate(self, rows: DataFrame) -> DataFrame:
        """The table's rows for ``rows`` alone: one per window and keys, measures and derived columns."""
        window = sf.window("event_time", self.window)
        grouped = rows.groupBy(window.alias("window"), *self.keys).agg(
            *(sf.expr(m.aggregate).alias(m.name) for m in self.measures)
        )
        plain = {m.name: f"`{m.name}`" for m in self.measures}
        return grouped.select(
            sf.col("window.start").alias("window_start"),
            sf.col("window.end").alias("window_end"),
            sf.to_date("window.start").alias(PARTITION),
            *self.keys,
            *(m.name for m in self.measures),
            *(sf.expr(d.sql.format(**plain)).alias(d.name) for d in self.derived),
        )

    def merged(self) -> dict[str, str | Column]:
        """The MERGE's update of each non-key column: measures merge, derived columns follow the merged measures."""
        merges = {m.name: m.merge for m in self.measures}
        derived = {d.name: d.sql.format(**{k: f"({v})" for k, v in merges.items()}) for d in self.derived}
        return {**merges, **derived}

    @property
    def key_columns(self) -> tuple[str, ...]:
        return ("window_start", *self.keys)


_FRAUD: Final = "CAST(is_fraud AS BIGINT)"
_DEVICES, _DEVICES_EST = distinct("approx_devices", "device_id")
_COUNTRIES, _COUNTRIES_EST = distinct("approx_ip_countries", "ip_country")
_MERCHANTS, _MERCHANTS_EST = distinct("approx_merchants", "merchant_id")
_CUSTOMERS, _CUSTOMERS_EST = distinct("approx_customers", "customer_id")

GOLD_TABLES: Final = (
    GoldTable(
        "hourly_sales",
        "1 hour",
        ("merchant_category", "merchant_country", "currency"),
        (
            count("transactions"),
            total("amount_cents", "amount_cents"),
            total("fraud_transactions", _FRAUD),
            total("fraud_amount_cents", "CASE WHEN is_fraud THEN amount_cents ELSE 0 END"),
            _CUSTOMERS,
        ),
        (_CUSTOMERS_EST,),
        lambda c: c.gold_hourly_sales_path,
    ),
    GoldTable(
        "customer_behaviour",
        "1 hour",
        ("customer_id",),
        (
            count("transactions"),
            total("amount_cents", "amount_cents"),
            largest("max_amount_cents", "amount_cents"),
            _DEVICES,
            _COUNTRIES,
            _MERCHANTS,
            total("fraud_transactions", _FRAUD),
        ),
        (_DEVICES_EST, _COUNTRIES_EST, _MERCHANTS_EST),
        lambda c: c.gold_customer_windows_path,
    ),
    GoldTable(
        "fraud_rates",
        "1 day",
        ("merchant_category", "merchant_country"),
        (count("transactions"), total("fraud_transactions", _FRAUD)),
        (Derived("fraud_rate", "{fraud_transactions} / {transactions}"),),
        lambda c: c.gold_fraud_rates_path,
    ),
)
# The silver columns gold reads.
INPUT_COLUMNS: Final = (
    "event_time",
    "customer_id",
    "merchant_id",
    "merchant_category",
    "merchant_country",
    "currency",
    "amount_cents",
    "is_fraud",
    "device_id",
    "ip_country",
)


def ensure_gold_tables(spark: SparkSession, cfg: StreamingConfig) -> None:
    """Create each gold table empty, partitioned by ``event_date``, with the schema its aggregation produces."""
    silver = spark.read.format("delta").load(str(cfg.silver_path)).select(*INPUT_COLUMNS)
    empty = spark.createDataFrame([], silver.schema)
    for table in GOLD_TABLES:
        create_empty(table.path(cfg), table.aggregate(empty).schema, partition_by=(PARTITION,))


@dataclass(frozen=True)
class GoldBatch:
    """``foreachBatch`` body of the ``gold`` query: the batch's silver rows -> each table, exactly once."""

    cfg: StreamingConfig

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        spark = batch.sparkSession
        app_id = "gold-" + checkpoint_id(self.cfg.checkpoint("gold"))
        phases = BatchPhases(spark, "gold", batch_id)
        rows = batch.persist()
        try:
            with phases.phase("days"):
                days = [row[0] for row in rows.select(sf.to_date("event_time")).distinct().collect()]
            for table in GOLD_TABLES if days else ():
                with phases.phase(table.name):
                    _merge(
                        spark,
                        table,
                        table.aggregate(rows),
                        days,
                        path=str(table.path(self.cfg)),
                        txn=(app_id, batch_id),
                    )
        finally:
            rows.unpersist()
        phases.write(phases_path(self.cfg.metrics_path))


def _merge(
    spark: SparkSession, table: GoldTable, rows: DataFrame, days: list[Any], *, path: str, txn: tuple[str, int]
) -> None:
    """Merge ``rows`` into the ``days`` they touch; into an empty table, append (nothing could match).

    An append costs far less than a MERGE, which writes its source to disk and joins it with the target twice.
    The MERGE condition names the batch's days as literals: Delta prunes partitions on literal predicates of
    the target only, not on the join keys. Whether the table is empty is read from its log with delta-rs, not
    with a Spark job.
    """
    app_id, batch_id = txn
    if not LogTable(path).file_uris():
        (
            rows.repartition(PARTITION)
            .write.format("delta")
            .mode("append")
            .option("txnAppId", app_id)
            .option("txnVersion", batch_id)
            .save(path)
        )
        return
    on = " AND ".join(f"t.`{k}` <=> u.`{k}`" for k in table.key_columns)
    spark.conf.set(_TXN_APP_ID, app_id)
    spark.conf.set(_TXN_VERSION, str(batch_id))
    try:
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(rows.alias("u"), sf.col(f"t.{PARTITION}").isin(days) & sf.expr(on))
            .whenMatchedUpdate(set=table.merged())
            .whenNotMatchedInsertAll()
            .execute()
        )
    finally:
        spark.conf.unset(_TXN_APP_ID)
        spark.conf.unset(_TXN_VERSION)


def start_gold(spark: SparkSession, cfg: StreamingConfig, trigger: dict[str, Any]) -> StreamingQuery:
    """The one gold query: silver's appends -> the three tables (checkpoint ``checkpoints/gold``)."""
    ensure_gold_tables(spark, cfg)
    return (
        spark.readStream.format("delta")
        .load(str(cfg.silver_path))
        .select(*INPUT_COLUMNS)
        .writeStream.queryName("gold")
        .option("checkpointLocation", str(cfg.checkpoint("gold")))
        .foreachBatch(GoldBatch(cfg))
        .trigger(**trigger)
        .start()
    )
