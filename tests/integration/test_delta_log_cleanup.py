"""The Delta log cleanup against Spark and Delta themselves: a cleaned table still reads, takes appends, and a
streaming reader stopped behind the cleanup resumes from its checkpoint without losing or repeating a row.

Needs Spark and Delta only (no services). Also checks that the session writes the log through Hadoop's raw
local file system: no ``.crc`` sidecar beside each commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from shoplake.config import get_settings
from shoplake.lakehouse import table_properties
from shoplake.lakehouse.log_cleanup import clean_table, parse, streaming_readers
from shoplake.runtime.session import spark_session
from tests.integration.delta_follower import follow

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield spark_session(get_settings(), app_name="shoplake-it-log-cleanup", shuffle_partitions=1)


def _append(spark: SparkSession, path: Path, first: int, count: int) -> None:
    """``count`` commits of one row each, numbered from ``first``."""
    for n in range(first, first + count):
        spark.range(n, n + 1).write.format("delta").mode("append").save(str(path))


def _versions(log_dir: Path, kind: str) -> list[int]:
    return sorted(f.version for f in map(parse, (p.name for p in log_dir.iterdir())) if f and f.kind == kind)


def test_a_cleaned_table_reads_appends_and_resumes_its_readers(spark: SparkSession, tmp_path: Path) -> None:
    table, sink, root = tmp_path / "table", tmp_path / "sink", tmp_path / "checkpoints"
    _append(spark, table, 0, 1)
    table_properties.apply(str(table), {table_properties.CHECKPOINT_INTERVAL: "5"})
    _append(spark, table, 1, 11)  # versions 2..12 (1 is the property change); checkpoints at 5 and 10
    follow(spark, table, sink, root / "reader")  # the reader has read up to version 12
    _append(spark, table, 12, 14)  # versions 13..26, which the reader has not read

    log_dir = table / "_delta_log"
    result = clean_table("table", table, readers=streaming_readers(root), retention_s=0)

    # Only the reader holds the log back: it starts at the newest checkpoint before the reader's version.
    assert result.held_by == "reader" and result.floor is not None and 12 <= result.floor <= 13
    assert result.starts_at == 10 and result.deleted > 0
    assert _versions(log_dir, "commit")[0] == 10 and _versions(log_dir, "checkpoint")[0] == 10
    # The log is written through the raw local file system: no Hadoop checksum sidecar beside its commits (only
    # beside the checkpoints, which Parquet writes through FileSystem).
    sidecars = [f.name for f in map(parse, (p.name for p in log_dir.iterdir())) if f and f.kind == "sidecar"]
    assert sidecars and all(name.endswith(".checkpoint.parquet.crc") for name in sidecars)

    assert spark.read.format("delta").load(str(table)).count() == 26
    _append(spark, table, 26, 1)  # a writer's snapshot update after the cleanup
    follow(spark, table, sink, root / "reader")
    rows = sorted(r.id for r in spark.read.format("delta").load(str(sink)).collect())
    assert rows == list(range(27))  # every row once: nothing lost behind the cleanup, nothing repeated
