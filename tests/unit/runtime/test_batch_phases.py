"""BatchPhases: per-phase wall/CPU time and the Spark jobs each phase ran, one JSON line per batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from shoplake.config import get_settings
from shoplake.runtime.batch_phases import BatchPhases, phases_path
from shoplake.runtime.session import spark_session

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield spark_session(get_settings(), app_name="shoplake-unit", shuffle_partitions=1)


def actions(spark: SparkSession) -> None:
    spark.range(10).count()
    spark.range(5).collect()


def test_each_phase_gets_its_time_and_spark_jobs(spark: SparkSession, tmp_path: Path) -> None:
    # Job groups as the stream thread has them (one per query run): jobs other tests leave running in this
    # shared session are not counted, and how many jobs an action takes is measured, not assumed.
    sc, tracker = spark.sparkContext, spark.sparkContext.statusTracker()
    try:
        sc.setJobGroup("unit-reference", "the jobs the phase's actions take")
        actions(spark)
        expected = len(tracker.getJobIdsForGroup("unit-reference"))
        sc.setJobGroup("unit-batch", "one micro-batch")
        phases = BatchPhases(spark, "unit", 7)
        with phases.phase("two_actions"):
            actions(spark)
        with phases.phase("no_job"):
            pass
        with phases.phase("two_actions"):  # a phase entered twice adds up
            actions(spark)
        path = phases_path(tmp_path / "progress.jsonl")
        phases.write(path, input_rows=10)  # on the batch's thread, like the stream's foreachBatch
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]

    (line,) = [json.loads(text) for text in path.read_text().splitlines()]
    assert path.name == "batch_phases.jsonl"
    assert (line["query"], line["batch_id"], line["input_rows"]) == ("unit", 7, 10)
    assert expected >= 2
    assert line["spark_jobs_by_phase"] == {"two_actions": 2 * expected, "no_job": 0}
    assert line["spark_jobs"] == 2 * expected
    assert set(line["phases_ms"]) == set(line["jvm_cpu_ms"]) == {"two_actions", "no_job"}
    assert 0 < line["phases_ms"]["two_actions"] <= line["total_ms"]
    assert line["jvm_cpu_ms"]["two_actions"] >= 0
