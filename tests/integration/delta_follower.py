"""A streaming reader of a Delta table, as the gold queries and the scorer read silver: for tests that change
a table under its readers (log cleanup, compaction) and check they still see every row exactly once."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession


def follow(spark: SparkSession, source: Path, sink: Path, checkpoint: Path) -> None:
    """Copy what ``source`` committed since the last run into ``sink`` (availableNow, one checkpoint)."""
    query = (
        spark.readStream.format("delta")
        .load(str(source))
        .writeStream.format("delta")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start(str(sink))
    )
    query.awaitTermination()
    assert query.exception() is None
