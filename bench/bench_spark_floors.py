"""What Spark itself costs per event on this machine before any of our work: the floors under issue 4's target.

Issue 4 asks for >= 50,000 events/s from Kafka through bronze, silver and gold on 2 cores: at most 40
CPU-microseconds per event for everything. This benchmark measures how much of that budget Spark Structured
Streaming spends on the simplest queries that read the same topic, in one SparkSession, each stage on a fresh
topic of its own (Spark's Kafka consumer pool keeps fetched records, so a re-read topic would look cheaper):

1. **cold JVM, Kafka -> bronze** - Spark's Kafka source in bronze's layout appended by Spark's own Delta sink
   (raw bytes and metadata, partitioned by date, no decode) as the session's first work: what a fresh catch-up
   driver pays for the first stage alone, JIT compilation included.
2. **Kafka -> medallion (warm-up)** - our medallion query, so the JVM has compiled its code too.
3. **warm JVM, Kafka -> noop** - Spark's Kafka source into the ``noop`` sink: reading, nothing else.
4. **warm JVM, Kafka -> bronze** - stage 1 again on a JVM that has compiled it.
5. **warm JVM, Kafka -> medallion** - ours (bronze + decode + validate + silver + PostgreSQL), for comparison.

Then the later stages alone, each at the cheapest form Spark offers for it, on in-memory copies of stage 5's
bronze and silver tables (read and cached before the timing, so no Kafka read and no Delta scan is counted):

6. **silver append** - the batch's silver rows appended to a new Delta table, partitioned like silver.
7. **silver append, cheapest Parquet settings** - the same without compression and without dictionaries
   (what ``spark.sql.parquet.compression.codec`` and ``parquet.enable.dictionary`` allow).
8. **gold as three batch aggregations** - our three gold aggregations as plain batch queries over the rows,
   each appended to a new table: no state store, no watermark, no MERGE.
9. **PostgreSQL COPY** - the rows to Arrow on the driver and COPYed into an empty ``raw.transactions``-shaped
   table (the load path when every key is new); the server's CPU is in the services column.
10. **decode + validate** - our decode (Arrow UDF) and validation of the bronze rows into the ``noop`` sink.

Each of 6-10 runs twice and the second run is reported: its first run also compiles its code (printed, not
written). Summing 4 + 7 + 8 gives the floor of the shape issue 4 asks for - bronze, silver and gold written
once, nothing decoded, validated, deduplicated or loaded into PostgreSQL - which no implementation can undercut
with Spark's Kafka source and Delta writer on this machine.

The session starts without the Java 25 AOT cache, like ``bench_streaming.py`` without ``--aot-cache``. The CPU
column can undercount by what a Python worker used before it exited mid-stage: PySpark's worker daemon ignores
SIGCHLD, so an exited worker's time reaches no parent's ``cutime`` (it never overcounts).
Needs Kafka, the registry and PostgreSQL up (``shoplake up postgres kafka registry``).
``.venv/bin/python -m bench.bench_spark_floors [--n 500000] [--no-write]``
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.bench_streaming import drop_schema, lane_config, machine, produce, services_cpu
from bench.benchmarks_md import write_section
from bench.process_tree import measured
from shoplake.config import Settings, get_settings
from shoplake.pipeline.config import StreamingConfig

SECTION = "## Streaming floors"
# 50,000 events/s on 2 cores: the CPU time one event may cost on the whole path (issue 4's target).
BUDGET_US = 2 / 50_000 * 1e6


def bronze_query(spark: Any, settings: Settings, root: str) -> int:
    """Spark's Kafka source in bronze's layout into Delta's own streaming sink (availableNow); the rows it read."""
    from shoplake.pipeline.bronze import bronze_projection

    kafka = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
        .option("subscribe", settings.kafka.topic)
        .option("startingOffsets", "earliest")
        .option("includeHeaders", "true")
        .load()
    )
    query = (
        bronze_projection(kafka)
        .writeStream.format("delta")
        .partitionBy("event_date")
        .option("checkpointLocation", f"{root}/checkpoint")
        .trigger(availableNow=True)
        .start(f"{root}/bronze")
    )
    query.awaitTermination()
    return sum(int(p.numInputRows) for p in query.recentProgress)


def noop_query(spark: Any, settings: Settings, checkpoint: str) -> int:
    """Spark's Kafka source into the ``noop`` sink (availableNow); the rows it read."""
    query = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
        .option("subscribe", settings.kafka.topic)
        .option("startingOffsets", "earliest")
        .option("includeHeaders", "true")  # as the bronze query reads it
        .load()
        .writeStream.format("noop")
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    return sum(int(p.numInputRows) for p in query.recentProgress)


def _timed(label: str, work: Callable[[], int], services: Callable[[], float]) -> dict[str, Any]:
    """Run one stage: its rows, wall and CPU seconds, and the local services' CPU over the same time."""
    services_before = services()
    rows, took = measured(work)
    result = {"stage": label, "rows": rows, **took, "services_cpu": services() - services_before}
    print(result, flush=True)
    return result


def cheapest_parquet(spark: Any) -> Callable[[], None]:
    """Parquet without compression or dictionaries for this session's writes; returns the undo."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    codec, dictionary = spark.conf.get("spark.sql.parquet.compression.codec"), hadoop.get("parquet.enable.dictionary")
    spark.conf.set("spark.sql.parquet.compression.codec", "uncompressed")
    hadoop.set("parquet.enable.dictionary", "false")

    def undo() -> None:
        spark.conf.set("spark.sql.parquet.compression.codec", codec)
        if dictionary is None:
            hadoop.unset("parquet.enable.dictionary")
        else:
            hadoop.set("parquet.enable.dictionary", dictionary)

    return undo


def later_stages(spark: Any, base: Settings, cfg: StreamingConfig) -> list[tuple[str, Callable[[], int]]]:
    """Stages 6-10: silver, gold, PostgreSQL and decode alone, from in-memory copies of ``cfg``'s tables."""
    from pyspark.sql import DataFrame

    from shoplake.contracts.schemas import schema_dict
    from shoplake.pipeline import gold
    from shoplake.pipeline.bronze import UNUSED_BRONZE
    from shoplake.pipeline.silver.decode import Decoder, RegistrySchemas
    from shoplake.pipeline.silver.transforms import decode_frames, validate
    from shoplake.pipeline.sinks.postgres import COLUMN_TYPES, WarehouseTable, ensure_table, upsert

    def cached(frame: DataFrame) -> tuple[DataFrame, int]:
        frame = frame.cache()
        return frame, frame.count()

    silver, silver_rows = cached(spark.read.format("delta").load(str(cfg.silver_path)))
    bronze, bronze_rows = cached(spark.read.format("delta").load(str(cfg.bronze_path)).drop(*UNUSED_BRONZE))
    scratch = cfg.checkpoint_root.parent / "floors"
    runs = iter(range(1, 1_000))  # every write goes to a table (or PostgreSQL schema) of its own

    def silver_append() -> int:
        silver.write.format("delta").partitionBy("event_date").mode("append").save(str(scratch / f"silver{next(runs)}"))
        return silver_rows

    def silver_append_cheapest() -> int:
        undo = cheapest_parquet(spark)
        try:
            return silver_append()
        finally:
            undo()

    def gold_batch() -> int:
        run = next(runs)
        for table in gold.GOLD_TABLES:
            table.aggregate(silver).write.format("delta").mode("append").save(str(scratch / f"gold{run}_{table.name}"))
        return silver_rows

    def postgres_copy() -> int:
        target = WarehouseTable(base.postgres.dsn(), f"{cfg.warehouse_schema}_floor{next(runs)}", cfg.warehouse_table)
        ensure_table(target)
        try:
            return upsert(target, silver.select(*COLUMN_TYPES).toArrow())
        finally:
            drop_schema(base, dataclasses.replace(cfg, warehouse_schema=target.schema))

    decoder = Decoder(schema_dict(), RegistrySchemas(cfg.schema_registry_url))

    def decode_validate() -> int:
        validate(decode_frames(bronze, decoder)).write.format("noop").mode("overwrite").save()
        return bronze_rows

    return [
        ("warm JVM: silver append alone (from memory)", silver_append),
        ("warm JVM: silver append alone, uncompressed, no dictionaries (from memory)", silver_append_cheapest),
        ("warm JVM: gold as three batch aggregations, plain appends (from memory)", gold_batch),
        ("warm JVM: PostgreSQL COPY into an empty table (Arrow from memory)", postgres_copy),
        ("warm JVM: decode + validate -> noop (from memory)", decode_validate),
    ]


# The stages whose sum is the floor of issue 4's shape: Kafka -> bronze, silver and gold, each written once.
SHAPE_FLOOR = (
    "warm JVM: Kafka -> bronze (Spark's Delta sink)",
    "warm JVM: silver append alone, uncompressed, no dictionaries (from memory)",
    "warm JVM: gold as three batch aggregations, plain appends (from memory)",
)
OURS = "warm JVM: Kafka -> medallion (ours: bronze, decode, silver, PostgreSQL)"
# The stages the medallion itself runs, each at Spark's own cost: its ratio to their sum is issue 27's figure.
OURS_FLOORS = (
    "warm JVM: Kafka -> bronze (Spark's Delta sink)",
    "warm JVM: silver append alone (from memory)",
    "warm JVM: PostgreSQL COPY into an empty table (Arrow from memory)",
    "warm JVM: decode + validate -> noop (from memory)",
)


def run(n: int) -> list[dict[str, Any]]:
    from shoplake.runtime.jobs import run_catch_up
    from shoplake.runtime.session import spark_session

    base = get_settings()
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    lanes = [produce(base, n, f"{base.kafka.topic}.bench-stream-{stamp}-floor{i}")[0] for i in range(5)]
    spark = spark_session(base, app_name="shoplake-bench-floors", shuffle_partitions=4)

    def stage(lane: Settings, query: str) -> Callable[[], int]:
        def go() -> int:
            cfg = lane_config(lane, n)
            rows = run_catch_up(spark, cfg, (query,))[0].input_rows
            if query == "medallion":
                drop_schema(base, cfg)
            return rows

        return go

    def services() -> float:
        return services_cpu(base)

    noop_checkpoint = str(lane_config(lanes[2], n).checkpoint_root / "noop")

    def bronze(lane: Settings) -> Callable[[], int]:
        return lambda: bronze_query(spark, lane, str(lane_config(lane, n).checkpoint_root / "floor-bronze"))

    plan: list[tuple[str, Callable[[], int]]] = [
        ("cold JVM: Kafka -> bronze (Spark's Delta sink)", bronze(lanes[0])),
        ("Kafka -> medallion (warm-up of its code)", stage(lanes[1], "medallion")),
        ("warm JVM: Kafka -> noop sink", lambda: noop_query(spark, lanes[2], noop_checkpoint)),
        ("warm JVM: Kafka -> bronze (Spark's Delta sink)", bronze(lanes[3])),
        (OURS, stage(lanes[4], "medallion")),
    ]
    results = [_timed(label, work, services) for label, work in plan]
    for label, work in later_stages(spark, base, lane_config(lanes[4], n)):
        _timed(f"{label}, first run", work, services)  # compiles the stage's code: printed, not reported
        results.append(_timed(label, work, services))
    spark.stop()
    for lane in lanes:  # the lanes' tables and checkpoints (PostgreSQL schemas are dropped as each stage ends)
        shutil.rmtree(lane_config(lane, n).checkpoint_root.parent, ignore_errors=True)
    return results


def _us(result: dict[str, Any]) -> float:
    return float(result["cpu"]) / max(int(result["rows"]), 1) * 1e6


def render(n: int, machine_line: str, results: list[dict[str, Any]]) -> str:
    lines = [
        SECTION,
        "",
        f"- Machine: {machine_line}",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Command: `.venv/bin/python -m bench.bench_spark_floors --n {n}`",
        "- One SparkSession (`local[*]`, 2 cores, no AOT cache), the stages in this order, each on a fresh topic "
        f"of {n:,} events; CPU is the whole Spark process tree (driver JVM and Python workers).",
        "",
        "| stage | events | seconds (wall) | events/s (wall) | CPU s | CPU µs per event | share of the 40 µs budget "
        "| services CPU s | load at start |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        us = _us(r)
        lines.append(
            f"| {r['stage']} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows'] / max(r['seconds'], 1e-9):,.0f} | "
            f"{r['cpu']:.1f} | {us:.1f} | {us / BUDGET_US:.0%} | {r['services_cpu']:.1f} | {r['load']} |"
        )
    by_stage = {r["stage"]: r for r in results}
    floor = sum(_us(by_stage[s]) for s in SHAPE_FLOOR if s in by_stage)
    lines += [
        "",
        f"- Budget: 50,000 events/s on 2 cores leaves {BUDGET_US:.0f} CPU-µs per event for Kafka -> bronze -> "
        "silver -> gold together (and the local Kafka and PostgreSQL share the same cores).",
        "- Services CPU: Kafka, the registry and PostgreSQL over the stage (not in the CPU column).",
        "- The later stages (silver append onwards) read in-memory copies of the warm medallion's bronze and silver "
        "tables, cached before the timing; each ran twice and its second run is shown.",
        f"- Floor of the shape (warm Kafka -> bronze + the cheapest silver append + gold as plain batch "
        f"aggregations): **{floor:.1f} CPU-µs per event, {floor / BUDGET_US:.0%} of the budget**, before any "
        "decode, validation, deduplication or PostgreSQL load.",
    ]
    if OURS in by_stage and all(st in by_stage for st in OURS_FLOORS):
        parts = [_us(by_stage[st]) for st in OURS_FLOORS]
        ours = _us(by_stage[OURS])
        lines.append(
            f"- Ours against the floors of the stages it runs (bronze {parts[0]:.1f} + silver append {parts[1]:.1f} + "
            f"PostgreSQL COPY {parts[2]:.1f} + decode/validate {parts[3]:.1f} = {sum(parts):.1f} µs): warm medallion "
            f"{ours:.1f} µs, **{ours / sum(parts):.2f}x** (issue 27's target: <= 1.1x)."
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=500_000, help="events per stage (each on its own topic)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch BENCHMARKS.md")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be >= 1")
    machine_line = machine()
    text = render(args.n, machine_line, run(args.n))
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
