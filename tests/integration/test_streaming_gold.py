"""The gold query on a real silver table: each table equals a batch recomputation from silver, exactly once.

Runs the query as ``run_catch_up`` does (``availableNow``) over a small silver table written here (gold needs
Spark and Delta only, no services). The reference aggregates all of silver's rows at once; gold merged them
batch by batch. One customer-hour has 1,000-1,200 distinct devices, enough for its sketch to estimate.
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
from shoplake.pipeline.config import StreamingConfig, load_streaming_config
from shoplake.pipeline.gold import GOLD_TABLES
from shoplake.runtime.batch_phases import phases_path
from shoplake.runtime.jobs import run_catch_up
from shoplake.runtime.lane import LaneError, reset
from shoplake.runtime.session import spark_session

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
    """One customer-hour with 1,000 distinct devices: its sketch estimates them (the small groups' are counts)."""
    return [
        (at + dt.timedelta(seconds=i * 3 // 2), "C999", "M001", "travel", "US", "USD", 100, True, f"bot-{i}", "NG")
        for i in devices
    ]


def _lane(tmp_path: Path) -> StreamingConfig:
    return dataclasses.replace(
        load_streaming_config(get_settings().with_env(DELTA_BASE_PATH=tmp_path)),
        checkpoint_root=tmp_path / "checkpoints",
        metrics_path=tmp_path / "progress.jsonl",
    )


def _catch_up(spark: SparkSession, cfg: StreamingConfig) -> None:
    run_catch_up(spark, cfg, ("gold",))


def _without_sketches(df: DataFrame) -> DataFrame:
    """Sketches are compared through their estimates: a union's bytes differ from a sketch of all values."""
    return df.drop(*(c for c in df.columns if c.endswith("_sketch")))


def _assert_gold_equals_recomputation(spark: SparkSession, cfg: StreamingConfig) -> None:
    """Every table equals aggregating all of silver at once; the burst's device estimate (if any) within 1 %."""
    silver = spark.read.format("delta").load(str(cfg.silver_path))
    for table in GOLD_TABLES:
        gold = _without_sketches(spark.read.format("delta").load(str(table.path(cfg))))
        expected = _without_sketches(table.aggregate(silver))
        burst = "customer_id = 'C999'"
        if table.name == "customer_behaviour" and expected.where(burst).count():
            [got] = gold.where(burst).collect()
            [want] = expected.where(burst).collect()
            exact = silver.where(burst).select("device_id").distinct().count()
            assert abs(got.approx_devices - exact) <= 0.01 * exact, (got.approx_devices, exact)
            assert got.asDict() | {"approx_devices": 0} == want.asDict() | {"approx_devices": 0}
            gold, expected = gold.where(f"NOT ({burst})"), expected.where(f"NOT ({burst})")
        assertDataFrameEqual(gold, expected, checkRowOrder=False)


def test_gold_equals_a_recomputation_from_silver_across_batches_and_replays(
    spark: SparkSession, tmp_path: Path
) -> None:
    cfg = _lane(tmp_path)
    spark.createDataFrame(_rows(T0, 1_500, 0) + _burst(BURST), SCHEMA).write.format("delta").save(str(cfg.silver_path))
    _catch_up(spark, cfg)
    _assert_gold_equals_recomputation(spark, cfg)
    # The first batch creates each table's files with an append (nothing to match), one file per day.
    assert _operations(spark, cfg.gold_customer_windows_path) == ["CREATE TABLE", "WRITE"]
    assert _files(spark, cfg.gold_customer_windows_path) == 1

    # A second batch updating the last hours and opening new ones on the next day, 200 more devices in the burst.
    later = _rows(T0 + dt.timedelta(hours=14, minutes=30), 600, 1) + _burst(BURST, range(1_000, 1_200))
    spark.createDataFrame(later, SCHEMA).write.format("delta").mode("append").save(str(cfg.silver_path))
    _catch_up(spark, cfg)
    _assert_gold_equals_recomputation(spark, cfg)
    assert _operations(spark, cfg.gold_customer_windows_path) == ["CREATE TABLE", "WRITE", "MERGE"]
    # Two days, one file each: the MERGE rewrote the first day's file and wrote the second day's.
    for table in GOLD_TABLES:
        assert _files(spark, table.path(cfg)) == 2, table.name
    logged = [json.loads(line) for line in phases_path(cfg.metrics_path).read_text().splitlines()]
    assert [list(r["phases_ms"]) for r in logged if r["query"] == "gold"] == [
        ["days", *(t.name for t in GOLD_TABLES)]
    ] * 2

    # Nothing new: no batch. A crash after the merges, before the checkpoint's commit: the replayed batch finds
    # its transaction recorded in every table and merges nothing again.
    versions = [_version(spark, table.path(cfg)) for table in GOLD_TABLES]
    _catch_up(spark, cfg)
    _forget_last_commit(cfg.checkpoint("gold"))
    _catch_up(spark, cfg)
    assert [_version(spark, table.path(cfg)) for table in GOLD_TABLES] == versions
    logged = [json.loads(line) for line in phases_path(cfg.metrics_path).read_text().splitlines()]
    assert [r["batch_id"] for r in logged if r["query"] == "gold"] == [0, 1, 1]  # the replay ran
    _assert_gold_equals_recomputation(spark, cfg)


def test_a_per_table_gold_lane_is_refused_until_gold_is_reset(spark: SparkSession, tmp_path: Path) -> None:
    """Gold as older versions left it (a stateful query per table, tables by the hour) stops the run with the
    command that fixes it; ``reset --only gold`` moves gold aside and the next run rebuilds it from silver."""
    cfg = _lane(tmp_path)
    spark.createDataFrame(_rows(T0, 300, 0), SCHEMA).write.format("delta").save(str(cfg.silver_path))
    old = cfg.checkpoint("gold") / "hourly_sales"
    old.mkdir(parents=True)
    (old / "metadata").write_text('{"id":"0b0c9f1e-0000-4000-8000-000000000000"}')
    spark.range(1).withColumn("window_start", sf.current_timestamp()).write.format("delta").partitionBy(
        "window_start"
    ).save(str(cfg.gold_hourly_sales_path))

    with pytest.raises(LaneError, match=r"per-table gold checkpoint[\s\S]*partitioned by \['window_start'\]"):
        _catch_up(spark, cfg)
    with pytest.raises(LaneError, match=r"Run `shoplake stream reset --only gold`"):
        _catch_up(spark, cfg)

    retired = reset(cfg, tmp_path / "home", "gold")
    assert retired is not None and (retired / "delta" / "checkpoints" / "gold" / "hourly_sales" / "metadata").is_file()
    assert DeltaTable.isDeltaTable(spark, str(retired / "delta" / "gold" / "hourly_sales"))
    assert DeltaTable.isDeltaTable(spark, str(cfg.silver_path))  # silver stays
    _catch_up(spark, cfg)
    _assert_gold_equals_recomputation(spark, cfg)


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


def _operations(spark: SparkSession, path: Path) -> list[str]:
    """The table's Delta operations, oldest first."""
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    return [str(r["operation"]) for r in history]


def _files(spark: SparkSession, path: Path) -> int:
    return int(DeltaTable.forPath(spark, str(path)).detail().collect()[0]["numFiles"])
