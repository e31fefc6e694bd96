"""customer_behaviour's streaming query on a real silver table: the batch aggregation's values, exactly once.

Runs the streaming queries as ``run_catch_up`` does (``availableNow``) over a small silver table written
here (gold needs Spark and Delta only, no services). The reference is the plain batch aggregation with
Spark's ``approx_count_distinct``: customer_behaviour keeps register bitmaps in its state instead
(:mod:`shoplake.streaming.hll_bitmap`), and one customer-hour has enough devices to need the fill from silver.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.testing import assertDataFrameEqual

from shoplake.config import get_settings
from shoplake.monitoring import delta_health
from shoplake.streaming import table_properties
from shoplake.streaming.batch_phases import phases_path
from shoplake.streaming.config import StreamingConfig, load_streaming_config
from shoplake.streaming.gold import GOLD_TABLES, GoldTable, flatten_window, start_gold
from shoplake.streaming.session import spark_session

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
BURST = T0 + dt.timedelta(minutes=70)
SCHEMA = (
    "event_time timestamp, customer_id string, merchant_id string, merchant_category string, "
    "merchant_country string, currency string, amount_cents long, is_fraud boolean, device_id string, "
    "ip_country string"
)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield spark_session(get_settings(), app_name="shoplake-it-gold", shuffle_partitions=2)


def _rows(start: dt.datetime, n: int, salt: int) -> list[tuple[object, ...]]:
    """``n`` events over 3 hours from ``start``: 40 customers, a few devices/merchants/countries each."""
    return [
        (
            start + dt.timedelta(seconds=(i * 10_800) // n),
            f"C{i % 40:03d}",
            f"M{(i * 7 + salt) % 30:03d}",
            ("grocery", "travel", "electronics")[i % 3],
            ("US", "DE", "FR")[(i // 3) % 3],
            ("USD", "EUR")[i % 2],
            100 + (i * 37 + salt) % 5_000,
            i % 17 == 0,
            f"dev-{i % 40}-{(i + salt) % 3}",
            ("US", "DE", "NG", "FR")[(i + salt) % 4],
        )
        for i in range(n)
    ]


def _burst(at: dt.datetime, devices: range = range(1_000)) -> list[tuple[object, ...]]:
    """One customer-hour with 1,000 distinct devices: more than the bitmap can count exactly (~440 registers)."""
    return [
        (at + dt.timedelta(seconds=i * 3 // 2), "C999", "M001", "travel", "US", "USD", 100, True, f"bot-{i}", "NG")
        for i in devices
    ]


def _reference(table: GoldTable, silver: DataFrame) -> DataFrame:
    """The batch aggregation the table must equal: customer_behaviour with Spark's own HLL++."""
    assert table.name == "customer_behaviour"
    return flatten_window(
        silver.groupBy(sf.window("event_time", "1 hour").alias("window"), "customer_id").agg(
            sf.count(sf.lit(1)).alias("transactions"),
            sf.sum("amount_cents").alias("amount_cents"),
            sf.max("amount_cents").alias("max_amount_cents"),
            sf.approx_count_distinct("device_id").alias("approx_devices"),
            sf.approx_count_distinct("ip_country").alias("approx_ip_countries"),
            sf.approx_count_distinct("merchant_id").alias("approx_merchants"),
            sf.sum(sf.col("is_fraud").cast("long")).alias("fraud_transactions"),
        )
    )


# The table whose state is not Spark's own aggregate (the others are Spark's aggregates as they are, unit-tested
# in test_streaming_gold; each streaming query costs seconds however small its input).
CUSTOMERS = tuple(t for t in GOLD_TABLES if t.name == "customer_behaviour")


def _catch_up(spark: SparkSession, cfg: StreamingConfig) -> None:
    for table in CUSTOMERS:
        query = start_gold(spark, cfg, table, {"availableNow": True})
        query.awaitTermination()
        assert query.exception() is None, query.exception()


def _assert_gold_equals_batch(spark: SparkSession, cfg: StreamingConfig) -> None:
    silver = spark.read.format("delta").load(str(cfg.silver_path))
    for table in CUSTOMERS:
        gold = spark.read.format("delta").load(str(table.path(cfg)))
        assertDataFrameEqual(gold, _reference(table, silver), checkRowOrder=False)


@pytest.mark.parametrize("change_feed", [True, False], ids=["silver-change-feed", "silver-without-change-feed"])
def test_gold_equals_batch_aggregation_across_batches_and_replays(
    spark: SparkSession, tmp_path: Path, change_feed: bool
) -> None:
    """Without a change feed on silver (its properties never applied) the burst is counted from silver itself."""
    cfg = dataclasses.replace(
        load_streaming_config(dataclasses.replace(get_settings(), delta_base_path=tmp_path)),
        checkpoint_root=tmp_path / "checkpoints",
        metrics_path=tmp_path / "progress.jsonl",
    )
    append = spark.createDataFrame(_rows(T0, 1_500, 0) + _burst(BURST), SCHEMA)
    append.write.format("delta").save(str(cfg.silver_path))
    if change_feed:
        table_properties.apply(str(cfg.silver_path), table_properties.SILVER)
    _catch_up(spark, cfg)
    _assert_gold_equals_batch(spark, cfg)
    # The batch that creates the table appends (nothing to match), then the burst's counts are filled; the
    # later batches MERGE.
    assert _operations(spark, cfg.gold_customer_windows_path) == ["WRITE", "MERGE"]
    # The batch's phases are logged for the benchmarks: the upsert, then the fill's steps (without a change feed
    # nothing is appended to the values table: the burst is counted from silver).
    logged = [json.loads(line) for line in phases_path(cfg.metrics_path).read_text().splitlines()]
    fill = ["fill_pending", "fill_ledger", *(["fill_append"] if change_feed else []), "fill_merge"]
    assert [list(r["phases_ms"]) for r in logged if r["query"] == "gold_customer_behaviour"] == [["upsert", *fill]]
    burst = spark.read.format("delta").load(str(cfg.gold_customer_windows_path)).where("customer_id = 'C999'")
    assert [r.approx_devices for r in burst.collect()] == [
        r[0] for r in spark.createDataFrame(_burst(T0), SCHEMA).agg(sf.approx_count_distinct("device_id")).collect()
    ]

    # A second batch updating the last window and opening new ones (all within the 2-hour watermark), and
    # 200 more devices in the burst's window.
    later = spark.createDataFrame(
        _rows(T0 + dt.timedelta(hours=2, minutes=30), 600, 1) + _burst(BURST, range(1_000, 1_200)), SCHEMA
    )
    later.write.format("delta").mode("append").save(str(cfg.silver_path))
    _catch_up(spark, cfg)
    _assert_gold_equals_batch(spark, cfg)
    assert _operations(spark, cfg.gold_customer_windows_path) == ["WRITE", "MERGE", "MERGE", "MERGE"]
    # The upsert rewrote only the partitions of the windows it updated (10:00, all of whose customers came back,
    # and the burst's 09:00, whose 40 other customers it copied): nothing of 08:00 was read into the MERGE or
    # copied (unpartitioned, every file held every window). The last commit fills the burst again.
    upsert = _metrics(spark, cfg.gold_customer_windows_path, 2)
    assert (int(upsert["numTargetRowsUpdated"]), int(upsert["numTargetRowsCopied"])) == (41, 40), upsert
    if change_feed:
        # The burst's window was copied from silver once, then followed: the second fill appended only the rows
        # silver's second commit holds for that window (the 200 new devices), not the window again.
        values = spark.read.format("delta").load(str(cfg.gold_customer_window_values_path))
        burst_hour = values.where(sf.col("window_start") == BURST.replace(minute=0))
        per_version = {r[0]: r[1] for r in burst_hour.groupBy("silver_version").count().collect()}
        assert sorted(per_version) == [1, 2] and per_version[2] == 200, per_version
        assert per_version[1] == _silver_hour_rows_at_version_1(spark, cfg), per_version
    else:
        assert not DeltaTable.isDeltaTable(spark, str(cfg.gold_customer_window_values_path))

    # Replays change nothing: the same checkpoint (nothing new), and a fresh one (every window upserted again).
    version = _version(spark, cfg.gold_customer_windows_path)
    _catch_up(spark, cfg)
    assert _version(spark, cfg.gold_customer_windows_path) == version
    fresh = dataclasses.replace(cfg, checkpoint_root=tmp_path / "fresh-checkpoints")
    _catch_up(spark, fresh)
    _assert_gold_equals_batch(spark, cfg)

    # A crash between the upsert and the fill: the table holds the burst's NULL and the batch's commit was never
    # written. The restart replays the batch, which publishes the NULL again and fills it (the fill looks for
    # NULLs in the batch's own rows, not in the table).
    DeltaTable.forPath(spark, str(cfg.gold_customer_windows_path)).update(
        "customer_id = 'C999'", {"approx_devices": "NULL"}
    )
    _forget_last_commit(CUSTOMERS[0].checkpoint_path(fresh))
    _catch_up(spark, fresh)
    _assert_gold_equals_batch(spark, cfg)


def test_delta_health_does_not_count_rows_deleted_by_deletion_vectors(spark: SparkSession, tmp_path: Path) -> None:
    """A file's num_records still counts the rows a deletion vector deletes; the health check subtracts them."""
    path = tmp_path / "dv"
    rows = spark.range(100).coalesce(1)
    rows.write.format("delta").option("delta.enableDeletionVectors", "true").save(str(path))
    DeltaTable.forPath(spark, str(path)).delete("id < 10")
    assert int(_last_metrics(spark, path)["numDeletionVectorsAdded"]) == 1
    health = delta_health.check_table("dv", path, required=True, now=dt.datetime.now(dt.UTC), max_age=dt.timedelta(1))
    assert (health.status, health.files, health.rows) == (delta_health.OK, 1, 90), health


def _forget_last_commit(checkpoint: Path) -> None:
    """Remove the checkpoint's record that its last batch finished, as a crash inside the batch leaves it."""
    commits = checkpoint / "commits"
    last = max(commits.glob("[0-9]*"), key=lambda f: int(f.name))
    last.unlink()
    (commits / f".{last.name}.crc").unlink(missing_ok=True)


def _version(spark: SparkSession, path: Path) -> int:
    return int(spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()[0]["version"])


def _last_metrics(spark: SparkSession, path: Path) -> dict[str, str]:
    """The operation metrics of the table's newest commit."""
    return dict(spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()[0]["operationMetrics"])


def _metrics(spark: SparkSession, path: Path, version: int) -> dict[str, str]:
    """The operation metrics of the table's commit ``version``."""
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").where(f"version = {version}").collect()
    return dict(history[0]["operationMetrics"])


def _silver_hour_rows_at_version_1(spark: SparkSession, cfg: StreamingConfig) -> int:
    """Distinct (customer, device, IP country, merchant) rows of the burst's hour in silver's first commit."""
    hour = BURST.replace(minute=0)
    return (
        spark.read.format("delta")
        .option("versionAsOf", 1)
        .load(str(cfg.silver_path))
        .where((sf.col("event_time") >= hour) & (sf.col("event_time") < hour + dt.timedelta(hours=1)))
        .select("customer_id", "device_id", "ip_country", "merchant_id")
        .distinct()
        .count()
    )


def _operations(spark: SparkSession, path: Path) -> list[str]:
    """The table's Delta operations, oldest first."""
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    return [str(r["operation"]) for r in history]
