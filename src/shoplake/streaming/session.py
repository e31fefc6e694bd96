"""The SparkSession factory: the only code that knows which jars and Delta settings Spark needs.

Jobs, tests, benchmarks and the ML extract all call :func:`spark_session`, so moving from ``local[*]`` on a
laptop to a cluster is a matter of ``SPARK_MASTER`` and the streaming config file, never of code. The
connector jars (Kafka source, Delta, PostgreSQL JDBC) come from ``jvm/spark/pom.xml`` resolved once by
:func:`shoplake.jvm.artifacts_dir` and are passed as ``spark.jars``, because ``spark.jars.packages`` needs
Ivy access to a repository at every start, which these machines do not reliably have.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from shoplake.config import Settings
from shoplake.jvm import artifacts_dir, find_java

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_SPARK_MIN_JAVA = 17
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def spark_conf(
    settings: Settings, *, app_name: str, shuffle_partitions: int, ui: bool, driver_memory: str = "2g"
) -> dict[str, str]:
    """Every Spark setting Shoplake sets, as a plain dict (inspectable in tests and ``shoplake stream status``)."""
    if shuffle_partitions < 1:
        raise ValueError(f"shuffle_partitions must be >= 1, got {shuffle_partitions}")
    jars = sorted(p for p in artifacts_dir(settings, "spark").glob("*.jar"))
    spark_dir = settings.home / "spark"
    conf = {
        "spark.app.name": app_name,
        "spark.master": settings.spark_master,
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # A 2-core box: Spark's default of 200 shuffle partitions turns every small aggregate into 200 tasks.
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        # Continuous mode runs several queries in one driver; FAIR lets each stage's pool (jobs.run_continuous)
        # get its share of the cores, so the latency-critical query never waits for a whole gold batch.
        "spark.scheduler.mode": "FAIR",
        # Applied at JVM launch (PySpark passes the builder's conf to spark-submit); foreachBatch sinks that
        # collect a micro-batch as Arrow (the warehouse upsert) need more than the 1g default.
        "spark.driver.memory": driver_memory,
        # Event times are UTC end to end; the session must not reinterpret them in the machine's zone.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": str(ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": str(spark_dir / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={spark_dir / 'derby'}",
        # Bounded state for the gold aggregations (RocksDB keeps it off the JVM heap). RocksDB's native memory is
        # invisible to -Xmx: without a shared cap every state partition of every gold query gets its own
        # memtables and block cache, and the driver's RSS climbs far past its heap.
        "spark.sql.streaming.stateStore.providerClass": (
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
        ),
        "spark.sql.streaming.stateStore.rocksdb.boundedMemoryUsage": "true",
        "spark.sql.streaming.stateStore.rocksdb.maxMemoryUsageMB": "256",
        # The streaming jobs cache each micro-batch for the few reads of that batch only: compressing the cache
        # (a measurable share of task CPU in a stack-sampled streaming run) buys nothing.
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        # No "no-data" batches: they only advance watermarks to evict state, which the gold aggregations (update
        # mode, upserted by window) do not need for correct output - yet each one ran a full MERGE per gold
        # table (30+ s of a loaded driver for zero input rows in a stack-sampled run). Eviction happens on the
        # next batch that has data.
        "spark.sql.streaming.noDataMicroBatches.enabled": "false",
        "spark.databricks.delta.retentionDurationCheck.enabled": "true",
        # Delta rebuilds table snapshots with 50 tasks by default: pure overhead for tables on one machine.
        "spark.databricks.delta.snapshotPartitions": str(shuffle_partitions),
    }
    if settings.bind_host in _LOOPBACK:
        # The driver's RPC and block-manager ports listen on the bind address like every other service (Spark
        # would pick the host's first interface); executors of a same-host standalone cluster reach it there.
        conf["spark.driver.host"] = settings.bind_host
        conf["spark.driver.bindAddress"] = settings.bind_host
    if settings.spark_master.startswith("local"):
        # Local Python workers must run this interpreter (the venv with shoplake, fastavro, pyarrow), not
        # whatever `python3` is first on PATH; a cluster provides its own via PYSPARK_PYTHON.
        conf["spark.pyspark.python"] = sys.executable
    return conf


def spark_session(
    settings: Settings,
    *,
    app_name: str = "shoplake",
    shuffle_partitions: int = 4,
    ui: bool = False,
    driver_memory: str = "2g",
) -> SparkSession:
    """A SparkSession with Delta and the Kafka source on the classpath (reuses the running one if any)."""
    find_java(_SPARK_MIN_JAVA)
    from pyspark.sql import SparkSession

    conf = spark_conf(
        settings, app_name=app_name, shuffle_partitions=shuffle_partitions, ui=ui, driver_memory=driver_memory
    )
    (settings.home / "spark").mkdir(parents=True, exist_ok=True)
    python = conf.get("spark.pyspark.python")
    if python:
        # PySpark's SparkContext reads the worker interpreter from this variable only (not from the conf).
        os.environ["PYSPARK_PYTHON"] = python
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
