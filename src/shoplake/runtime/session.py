"""The SparkSession factory: the only code that knows which jars and Delta settings Spark needs.

Jobs, tests, benchmarks and the ML extract all call :func:`spark_session`, so moving from ``local[*]`` on a
laptop to a cluster is a matter of ``SPARK_MASTER`` and the streaming config file, never of code. The
connector jars (Kafka source, Delta, PostgreSQL JDBC) come from ``jvm/spark/pom.xml`` resolved once by
:func:`shoplake.jvm.artifacts_dir` and are passed as ``spark.jars``, because ``spark.jars.packages`` needs
Ivy access to a repository at every start, which these machines do not reliably have.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from shoplake.config import Settings
from shoplake.files import write_text
from shoplake.jvm import artifacts_dir, find_java
from shoplake.runtime.class_sharing import AotPlan
from shoplake.runtime.class_sharing import plan as aot_plan

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_SPARK_MIN_JAVA = 17
log = logging.getLogger(__name__)
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


# glibc malloc arenas per process (its default is 8 per core). The streaming driver JVM starts and ends threads
# all the time (Delta commits, Kafka fetches, shuffle, state store maintenance); a thread that mallocs may get
# an arena of its own, and memory it frees stays cached in that arena. By default the arenas multiply and their
# resident memory keeps growing over a freshness run; with this cap it stays near what the JVM's own mallocs
# need (per native memory tracking).
MALLOC_ARENAS: Final = "2"
# The session conf holding what a short session's driver did with its AOT cache (use, train, none); unset = off.
AOT_ACTION_CONF: Final = "spark.shoplake.aotCache"

# Spark compiles code for plans as micro-batches run (a steady stream of classes in the continuous service, each
# generated class in a class loader of its own); classes no longer used, their metadata and their JIT-compiled
# code are freed only when a GC unloads them: a concurrent cycle or a full GC, which a pinned heap with a small
# live set seldom needs. The only other trigger is Metaspace reaching its GC threshold, which by default is
# reset well above what is in use after each cycle, so dead classes pile up for minutes between unloadings.
# 10-20 % head room makes Metaspace growth itself start the next unloading cycle (concurrent: no pause beyond a
# young GC), so Metaspace stays flat after the warm-up instead of growing. Each cycle costs a concurrent mark
# of the heap.
METASPACE_GC_OPTIONS: Final = ("-XX:MinMetaspaceFreeRatio=10", "-XX:MaxMetaspaceFreeRatio=20")

# glibc keeps memory that native code frees (C2 compiler arenas, zlib, RocksDB) in its arenas for reuse and
# returns it to the OS only from the top of an arena, so the service's driver held noticeably more than native
# memory tracking counts as allocated, and a manual trim (jcmd System.trim_native_heap) was soon undone. The JVM
# trims its C heap itself at this interval (an option of JDK 17.0.9+/21.0.1+; left out on a JVM that does not
# know it).
TRIM_NATIVE_HEAP_OPTION: Final = "-XX:TrimNativeHeapInterval=10000"


# Fair-scheduler pools of the continuous service (jobs.run_continuous runs each stage's query in the pool named
# after it). With equal pools a gold batch (three MERGEs, many tasks) took half the cores
# from the latency-critical medallion for as long as it ran, which is what the freshness tail is made of.
# minShare = the local cores and a higher weight let the medallion's few tasks go first whenever both have
# tasks waiting; gold still gets every core the medallion leaves idle (most of the time).
# The service's compaction of its appended tables (:mod:`shoplake.lakehouse.compaction`) runs in "maintenance":
# weighted like gold, behind the queries' pools.
POOL_WEIGHTS: Final = {
    "medallion": 8,
    "scorer": 2,
    "gold": 1,
    "maintenance": 1,
}
_PRIORITY_MIN_SHARE: Final = 2


def fair_pools_xml() -> str:
    """The ``spark.scheduler.allocation.file`` content for :data:`POOL_WEIGHTS`."""
    pools = "".join(
        f'  <pool name="{name}"><schedulingMode>FIFO</schedulingMode><weight>{weight}</weight>'
        f"<minShare>{_PRIORITY_MIN_SHARE if weight > 1 else 0}</minShare></pool>\n"
        for name, weight in POOL_WEIGHTS.items()
    )
    return f'<?xml version="1.0"?>\n<allocations>\n{pools}</allocations>\n'


def driver_java_options(spark_dir: Path, driver_memory: str, *, long_running: bool) -> str:
    """The driver JVM's options (``-Xmx`` is ``spark.driver.memory``; Spark refuses it here).

    A long-running driver (the continuous service) starts with its whole heap committed and touched
    (``-Xms`` = ``-Xmx``, ``-XX:+AlwaysPreTouch``): G1 otherwise grows the committed heap towards ``-Xmx``
    whenever GC time looks high - which it does on a loaded 2-core machine - and gives it back only after a
    full or concurrent cycle that a steady stream rarely triggers. That growth was most of the driver's RSS
    climb in a freshness run (native memory tracking: ``Java Heap`` committed), while the live heap stayed
    small - read as a leak. Pinned, the service's footprint is known the moment it starts
    (an oversized ``driver_memory`` fails then, not hours later), and what still grows afterwards is native:
    Metaspace (kept close to what is in use: ``METASPACE_GC_OPTIONS``), freed C heap that glibc keeps
    (``TRIM_NATIVE_HEAP_OPTION``), thread stacks and JIT code (growing in the first minutes, bounded by the
    240 MB code cache). RocksDB is not among them at this size: the gold state stays small on disk, far below
    the state store cap below. Short sessions (tests, catch-up runs, the ML extract) keep the
    lazily grown heap and the JVM's defaults.
    """
    options = [f"-Dderby.system.home={spark_dir / 'derby'}"]
    if long_running:
        options += [f"-Xms{driver_memory}", "-XX:+AlwaysPreTouch", *METASPACE_GC_OPTIONS]
        if _jvm_accepts(find_java(_SPARK_MIN_JAVA), TRIM_NATIVE_HEAP_OPTION):
            options.append(TRIM_NATIVE_HEAP_OPTION)
    return " ".join(options)


@functools.cache
def _jvm_accepts(java: str, option: str) -> bool:
    """Whether ``java`` starts with ``option``: an unknown ``-XX`` option makes the driver JVM fail to start."""
    probe = subprocess.run([java, option, "-version"], capture_output=True, check=False, timeout=60)
    return probe.returncode == 0


def spark_conf(
    settings: Settings,
    *,
    app_name: str,
    shuffle_partitions: int,
    ui: bool,
    driver_memory: str = "2g",
    long_running: bool = False,
    aot: AotPlan | None = None,
) -> dict[str, str]:
    """Every Spark setting Shoplake sets, as a plain dict (inspectable in tests and ``shoplake stream status``).

    ``long_running`` is the continuous service: see :func:`driver_java_options`. ``aot`` is a short session's
    AOT cache plan (:mod:`.class_sharing`): its JVM options, and the connector jars on the driver's class path,
    because the cache holds only classes of the JVM's own class loaders (``spark.jars`` load through Spark's).
    """
    if shuffle_partitions < 1:
        raise ValueError(f"shuffle_partitions must be >= 1, got {shuffle_partitions}")
    jars = sorted(p for p in artifacts_dir(settings, "spark").glob("*.jar"))
    spark_dir = settings.home / "spark"
    conf = {
        "spark.app.name": app_name,
        "spark.master": settings.spark.master,
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # A 2-core box: Spark's default of 200 shuffle partitions turns every small aggregate into 200 tasks.
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        # Continuous mode runs several queries in one driver; FAIR lets each stage's pool (jobs.run_continuous)
        # get its share of the cores, so the latency-critical query never waits for a whole gold batch.
        "spark.scheduler.mode": "FAIR",
        "spark.scheduler.allocation.file": str(spark_dir / "fairscheduler.xml"),
        # Applied at JVM launch (PySpark passes the builder's conf to spark-submit); foreachBatch sinks that
        # collect a micro-batch as Arrow (the warehouse upsert) need more than the 1g default.
        "spark.driver.memory": driver_memory,
        # Event times are UTC end to end; the session must not reinterpret them in the machine's zone.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": str(ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": str(spark_dir / "warehouse"),
        "spark.driver.extraJavaOptions": " ".join(
            [driver_java_options(spark_dir, driver_memory, long_running=long_running), *(aot.options if aot else ())]
        ),
        # Executors of a cluster get the same arena cap as the local driver (see MALLOC_ARENAS).
        "spark.executorEnv.MALLOC_ARENA_MAX": MALLOC_ARENAS,
        # The status store (kept even with the UI off: statusTracker and the event log read it) retains 1,000
        # jobs, stages and SQL executions by default, each execution with its plan graph and metrics. A
        # continuous query runs several of each per micro-batch, so a long-running driver holds the last 1,000
        # forever; nobody reads more than the recent ones, and a smaller store is less live heap to copy per GC.
        "spark.ui.retainedJobs": "100",
        "spark.ui.retainedStages": "100",
        "spark.sql.ui.retainedExecutions": "50",
        # The streaming jobs cache each micro-batch for the few reads of that batch only: compressing the cache
        # (a measurable share of task CPU in a stack-sampled streaming run) buys nothing.
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        "spark.databricks.delta.retentionDurationCheck.enabled": "true",
        # Hadoop's checksummed local file system writes a ``.<name>.crc`` sidecar beside every file, which
        # doubled the entries of each ``_delta_log`` that Delta lists in full on every snapshot update. Delta's
        # log store (and Spark's checkpoint manager) write through FileContext, whose raw local implementation
        # writes none; Delta's own ``N.crc`` table checksums are unaffected. ``fs.file.impl`` (data files) stays the
        # checksummed one: Hadoop's ``FileSystem.getLocal`` casts it to ``LocalFileSystem``.
        "spark.hadoop.fs.AbstractFileSystem.file.impl": "org.apache.hadoop.fs.local.RawLocalFs",
        # Delta rebuilds a table's snapshot (log replay) with 50 tasks by default, and a bronze/quarantine append
        # replays the log once per micro-batch (its txnAppId check): one task is cheapest for logs this size,
        # for appends and silver reads alike.
        "spark.databricks.delta.snapshotPartitions": "1",
    }
    if aot is not None:
        # What this launch did with the cache, readable from the session (benchmarks report it, the UI shows it).
        conf[AOT_ACTION_CONF] = aot.action
    if aot is not None and aot.options:
        conf["spark.driver.extraClassPath"] = ":".join(str(j) for j in jars)
    if settings.bind_host in _LOOPBACK:
        # The driver's RPC and block-manager ports listen on the bind address like every other service (Spark
        # would pick the host's first interface); executors of a same-host standalone cluster reach it there.
        conf["spark.driver.host"] = settings.bind_host
        conf["spark.driver.bindAddress"] = settings.bind_host
    if settings.spark.master.startswith("local"):
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
    long_running: bool = False,
    aot_cache: bool = False,
) -> SparkSession:
    """A SparkSession with Delta and the Kafka source on the classpath (reuses the running one if any).

    ``aot_cache``: a short, repeated run (an orchestrated catch-up or maintenance run) starts its driver from an
    AOT cache on a Java 25 when ``SPARK_AOT_CACHE`` allows (see :mod:`.class_sharing`). Opt-in, because the first
    run of each application trains the cache (hundreds of MB, written at exit) and pays off only on later runs:
    one-off sessions (tests, the ML extract) would pay without gaining. The continuous service never uses it.
    """
    find_java(_SPARK_MIN_JAVA)
    from pyspark.sql import SparkSession

    aot = None
    if aot_cache and not long_running and SparkSession.getActiveSession() is None:
        aot = aot_plan(settings, app_name, sorted(artifacts_dir(settings, "spark").glob("*.jar")))
        log.info("Spark driver AOT cache: %s %s %s", aot.action, aot.cache or "", aot.reason)
    conf = spark_conf(
        settings,
        app_name=app_name,
        shuffle_partitions=shuffle_partitions,
        ui=ui,
        driver_memory=driver_memory,
        long_running=long_running,
        aot=aot,
    )
    (settings.home / "spark").mkdir(parents=True, exist_ok=True)
    # Two sessions starting at once each write this file: neither may read the other's half-written one.
    write_text(Path(conf["spark.scheduler.allocation.file"]), fair_pools_xml())
    python = conf.get("spark.pyspark.python")
    if python:
        # PySpark's SparkContext reads the worker interpreter from this variable only (not from the conf).
        os.environ["PYSPARK_PYTHON"] = python
    # glibc reads it when a process starts: the driver JVM launched below (and the Python workers it forks)
    # inherit it from this process's environment; executors get it from spark.executorEnv.
    os.environ["MALLOC_ARENA_MAX"] = conf["spark.executorEnv.MALLOC_ARENA_MAX"]
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    # spark-submit launches "$JAVA_HOME/bin/java"; only this launch gets the cache's JDK, not later subprocesses.
    java_home = os.environ.get("JAVA_HOME")
    if aot is not None and aot.java_home is not None:
        os.environ["JAVA_HOME"] = str(aot.java_home)
    try:
        session = builder.getOrCreate()
    finally:
        if java_home is None:
            os.environ.pop("JAVA_HOME", None)
        else:
            os.environ["JAVA_HOME"] = java_home
    session.sparkContext.setLogLevel("WARN")
    if aot is not None and aot.action == "train":
        atexit.register(_await_driver_exit, getattr(session.sparkContext._gateway, "proc", None))
    return session


# How long a process whose driver trains the AOT cache waits at exit for the JVM to write it (the write itself
# takes seconds).
_TRAINING_EXIT_TIMEOUT: Final = 300.0


def _await_driver_exit(proc: subprocess.Popen[bytes] | None) -> None:
    """End the training driver JVM (it exits when its stdin closes) and wait while it writes the AOT cache.

    Otherwise the JVM writes it after this process has gone, and a supervisor that kills the process group once
    its task ends (Airflow) would cut the write short every time, so no run would ever start from the cache.
    """
    if proc is None or proc.poll() is not None:
        return
    try:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=_TRAINING_EXIT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("the Spark driver did not finish writing its AOT cache: %s", exc)
