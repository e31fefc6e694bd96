"""The service's compaction of its appended tables against Spark and Delta themselves.

A compaction combines only the files below the size floor and leaves its own output alone afterwards; rows,
a streaming follower and the change feed see nothing of it; appends committed while it runs are kept; it
runs in the ``maintenance`` pool and records what it did. Needs Spark and Delta only (no services).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as sf

from shoplake.config import get_settings
from shoplake.lakehouse.compaction import JOB_GROUP, POOL, BackgroundCompaction, compact, results_path
from shoplake.pipeline.config import load_streaming_config
from shoplake.runtime.session import spark_session
from tests.integration.delta_follower import follow

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROWS_PER_APPEND = 60
SMALL = 16 * 1024  # above one append's file per partition (~7 KB), below a compaction's output (~50 KB)
LARGE = 1024 * 1024


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield spark_session(get_settings(), app_name="shoplake-it-compaction", shuffle_partitions=1)


def _append(spark: SparkSession, path: Path, first: int, count: int) -> None:
    """``count`` commits of ``ROWS_PER_APPEND`` rows, one file per day partition each (two days)."""
    for n in range(first, first + count):
        start = n * ROWS_PER_APPEND
        (
            spark.range(start, start + ROWS_PER_APPEND, numPartitions=1)
            .withColumn("day", (sf.col("id") % 2).cast("string"))
            # ~100 bytes of hex per row: files whose size the thresholds above can tell apart
            .withColumn("payload", sf.sha2(sf.col("id").cast("string"), 512))
            .write.format("delta")
            .mode("append")
            .partitionBy("day")
            .option("delta.enableChangeDataFeed", "true")
            .save(str(path))
        )


def _ids(spark: SparkSession, path: Path) -> list[int]:
    return sorted(r.id for r in spark.read.format("delta").load(str(path)).select("id").collect())


def _files(spark: SparkSession, path: Path) -> int:
    return int(DeltaTable.forPath(spark, str(path)).detail().collect()[0]["numFiles"])


def test_small_files_are_combined_once_and_readers_see_no_change(spark: SparkSession, tmp_path: Path) -> None:
    table, sink, checkpoint = tmp_path / "silver", tmp_path / "follower", tmp_path / "checkpoint"
    _append(spark, table, 0, 10)  # 20 small files
    follow(spark, table, sink, checkpoint)

    [first] = compact(spark, {"silver": table}, SMALL, LARGE)

    assert (first.files_removed, first.files_added, first.partitions) == (20, 2, 2)
    assert first.bytes_added > 0 and first.bytes_removed > 0
    assert _files(spark, table) == 2
    assert _ids(spark, table) == list(range(10 * ROWS_PER_APPEND))
    after_compaction = DeltaTable.forPath(spark, str(table)).history(1).collect()[0]["version"]

    _append(spark, table, 10, 3)  # 6 more small files beside the two compacted ones
    [second] = compact(spark, {"silver": table}, SMALL, LARGE)

    # Only the new small files are rewritten: the first run's output is above the floor and stays.
    assert (second.files_removed, second.files_added) == (6, 2)
    assert _files(spark, table) == 4
    assert spark.conf.get("spark.databricks.delta.optimize.minFileSize", None) is None  # the session is as it was
    assert spark.conf.get("spark.databricks.delta.optimize.maxThreads", None) is None
    # The follower reads every row once: the compaction commits are not new data to it.
    follow(spark, table, sink, checkpoint)
    assert _ids(spark, sink) == list(range(13 * ROWS_PER_APPEND))
    # The change feed since the first compaction holds the three appends' rows only, each inserted once.
    changes = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", after_compaction + 1)
        .load(str(table))
    )
    assert sorted(r.id for r in changes.collect()) == list(range(10 * ROWS_PER_APPEND, 13 * ROWS_PER_APPEND))
    assert {r._change_type for r in changes.select("_change_type").collect()} == {"insert"}


def test_output_files_stay_under_the_target_size(spark: SparkSession, tmp_path: Path) -> None:
    table = tmp_path / "silver"
    _append(spark, table, 0, 12)  # 12 small files per partition, ~5 KB each
    [result] = compact(spark, {"silver": table}, SMALL, 20 * 1024)
    assert (result.files_removed, result.partitions) == (24, 2)
    assert result.files_added > 2  # more than one file per partition
    files = spark.read.format("delta").load(str(table)).inputFiles()
    sizes = [Path(f.removeprefix("file:")).stat().st_size for f in files]
    assert len(sizes) == result.files_added and max(sizes) <= 20 * 1024
    assert _ids(spark, table) == list(range(12 * ROWS_PER_APPEND))


def test_a_stopping_service_starts_no_further_table(spark: SparkSession, tmp_path: Path) -> None:
    _append(spark, tmp_path / "t", 0, 2)
    stopping = threading.Event()
    stopping.set()
    assert compact(spark, {"t": tmp_path / "t"}, SMALL, LARGE, stopping) == []
    assert _files(spark, tmp_path / "t") == 4


def test_appends_committed_while_it_runs_are_kept(spark: SparkSession, tmp_path: Path) -> None:
    table = tmp_path / "bronze"
    _append(spark, table, 0, 30)
    appended = 0
    running = threading.Event()
    result: list[object] = []

    def run() -> None:
        running.set()
        result.extend(compact(spark, {"bronze": table}, SMALL, LARGE))

    worker = threading.Thread(target=run)
    worker.start()
    running.wait()
    while worker.is_alive():  # what the medallion does beside the service's compaction: keep appending
        _append(spark, table, 30 + appended, 1)
        appended += 1
    worker.join()

    optimize = DeltaTable.forPath(spark, str(table)).history().where("operation = 'OPTIMIZE'").first()
    assert result and optimize is not None
    # Appends landed between the compaction's snapshot and its commit, and neither side failed.
    assert optimize["version"] > optimize["readVersion"] + 1
    assert _ids(spark, table) == list(range((30 + appended) * ROWS_PER_APPEND))


def test_the_service_compaction_runs_in_its_pool_and_records_each_table(spark: SparkSession, tmp_path: Path) -> None:
    settings = get_settings().with_env(DELTA_BASE_PATH=tmp_path / "delta", SHOPLAKE_HOME=tmp_path / "home")
    cfg = dataclasses.replace(load_streaming_config(settings), compaction_min_file_size="16k")
    _append(spark, cfg.silver_path, 0, 4)
    _append(spark, cfg.quarantine_path, 0, 2)  # no bronze table yet: skipped

    service = BackgroundCompaction(spark, cfg)
    assert service.start()
    service.wait()

    lines = [json.loads(line) for line in results_path(cfg.metrics_path).read_text().splitlines()]
    assert [(r["table"], r["files_removed"], r["files_added"]) for r in lines] == [
        ("silver", 8, 2),
        ("quarantine", 4, 2),
    ]
    assert all(r["seconds"] > 0 for r in lines)
    assert _rewrite_pools(spark, JOB_GROUP) == {POOL}


def _rewrite_pools(spark: SparkSession, group: str) -> set[str]:
    """The fair-scheduler pools the job group's file rewrites ran in (Spark's status store).

    Only the rewrites ("Optimizing N files in partition ..."): some stages of Delta's snapshot jobs are
    submitted from Spark's own threads and land in the default pool (weight 1 as well, no minimum share).
    """
    sc = spark.sparkContext._jsc.sc()
    sc.listenerBus().waitUntilEmpty()  # the store is filled by the listener bus, after the jobs end
    store = sc.statusStore()
    pools = set()
    for job in spark.sparkContext.statusTracker().getJobIdsForGroup(group):
        if "Optimizing" not in str(store.job(job).description()):
            continue
        stages = store.job(job).stageIds()
        pools |= {str(store.lastStageAttempt(stages.apply(i)).schedulingPool()) for i in range(stages.size())}
    return pools
