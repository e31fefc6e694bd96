"""The streaming jobs on a Spark standalone cluster give exactly what they give on ``local[*]``.

This is the test that the code is cluster-ready: the same job runs twice on the same Kafka topic, in two
fresh processes whose settings differ only in ``SPARK_MASTER`` - once ``local[2]``, once the local
standalone cluster (a master and two workers from the pyspark wheel, ``shoplake up spark``), where the
decoder closures, the registry lookups and the Delta/Kafka jars must reach separate executor JVMs and
Python workers. Silver, quarantine and the three gold tables must come out identical (apart from
``ingested_at``, the processing time).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from shoplake import stack as local_stack
from shoplake.config import Settings, env_for_children
from shoplake.stack import spark_cluster

from . import test_streaming_medallion as medallion
from .test_streaming_medallion import Lane, frame, make_record, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

spark = medallion.spark  # the test process's own local session, only to read the results
lane = medallion.lane

TABLES = ("silver", "quarantine", "gold_hourly_sales", "gold_customer_windows", "gold_fraud_rates")
JOB = """
import json, sys
from shoplake.config import get_settings
from shoplake.pipeline.config import load_streaming_config
from shoplake.runtime.jobs import run_catch_up
from shoplake.runtime.session import spark_session

settings = get_settings()
cfg = load_streaming_config(settings)
spark = spark_session(settings, app_name="shoplake-it-cluster", shuffle_partitions=cfg.shuffle_partitions)
run_catch_up(spark, cfg, ("medallion", "gold"))
executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
print(json.dumps({"master": spark.sparkContext.master, "executors": executors}))
spark.stop()
"""


@pytest.fixture(scope="module")
def cluster(stack: Settings) -> Iterator[str]:
    """The standalone cluster, healthy; stopped afterwards only if this fixture started it."""
    already = spark_cluster.health(stack).ok
    local_stack.up(stack, ["spark"])
    try:
        yield spark_cluster.master_url(stack)
    finally:
        if not already:
            local_stack.down(stack, ["spark"])


def _config(lane: Lane, root: Path) -> Path:
    """A streaming config writing every table under ``root`` (relative to DELTA_BASE_PATH)."""
    rel = root.relative_to(lane.settings.lake.base_path)
    lines = [
        "[source]",
        f'topics = ["{lane.topic}"]',
        "max_offsets_per_trigger = 100000",
        "[tables]",
        *(f'{t} = "{rel}/{t}"' for t in ("bronze", *TABLES)),
        "[paths]",
        f'checkpoints = "{root / "checkpoints"}"',
        f'progress_log = "{root / "progress.jsonl"}"',
        "[warehouse]",
        f'schema = "{lane.cfg.warehouse_schema}"',
        "[spark]",
        "shuffle_partitions = 2",
    ]
    path = root / "streaming.toml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(lane: Lane, master: str, root: Path) -> dict[str, object]:
    env = env_for_children(lane.settings, SPARK_MASTER=master, STREAMING_CONFIG=str(_config(lane, root)))
    log = root / "job.log"
    with log.open("w") as err:
        done = subprocess.run(
            [sys.executable, "-c", JOB],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            timeout=800,
            check=False,
        )
    assert done.returncode == 0, log.read_text()[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _table(spark: SparkSession, root: Path, name: str) -> DataFrame:
    df = spark.read.format("delta").load(str(root / name))
    return df.drop("ingested_at") if "ingested_at" in df.columns else df


def test_cluster_and_local_runs_give_identical_silver_quarantine_and_gold(
    spark: SparkSession, lane: Lane, cluster: str
) -> None:
    records = [make_record(i) for i in range(400)]
    poison = [b"not avro", frame(lane.schema_id, make_record(9_999, currency="ZZZ")), frame(4_242, records[0])]
    produce(
        lane.settings, lane.topic, [(None, frame(lane.schema_id, r)) for r in records] + [(None, p) for p in poison]
    )

    local = _run(lane, "local[2]", lane.root / "local")
    distributed = _run(lane, cluster, lane.root / "cluster")
    assert local == {"master": "local[2]", "executors": 0}
    assert distributed == {"master": cluster, "executors": 2}  # really ran on both workers' executors

    for name in TABLES:
        got, expected = _table(spark, lane.root / "cluster", name), _table(spark, lane.root / "local", name)
        assert got.count() > 0, name
        assertDataFrameEqual(got, expected)
    assert _table(spark, lane.root / "cluster", "silver").count() == len(records)
    assert _table(spark, lane.root / "cluster", "quarantine").count() == len(poison)
