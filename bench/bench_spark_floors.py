"""What Spark itself costs per event on this machine before any of our work: the floors under issue 4's target.

Issue 4 asks for >= 50,000 events/s from Kafka through bronze, silver and gold on 2 cores: at most 40
CPU-microseconds per event for everything. This benchmark measures how much of that budget Spark Structured
Streaming spends on the simplest queries that read the same topic, in one SparkSession, each stage on a fresh
topic of its own (Spark's Kafka consumer pool keeps fetched records, so a re-read topic would look cheaper):

1. **cold JVM, Kafka -> bronze** - the staged pipeline's ``bronze`` query (raw bytes and metadata into the Delta
   bronze table, partitioned by date, no decode) as the session's first work: what a fresh catch-up driver pays
   for the first stage alone, JIT compilation included.
2. **Kafka -> medallion (warm-up)** - our medallion query, so the JVM has compiled its code too.
3. **warm JVM, Kafka -> noop** - Spark's Kafka source into the ``noop`` sink: reading, nothing else.
4. **warm JVM, Kafka -> bronze** - stage 1 again on a JVM that has compiled it.
5. **warm JVM, Kafka -> medallion** - ours (bronze + decode + validate + silver + PostgreSQL), for comparison.

The session starts without the Java 25 AOT cache, like ``bench_streaming.py`` without ``--aot-cache``.
Needs Kafka, the registry and PostgreSQL up (``shoplake up postgres kafka registry``).
``.venv/bin/python bench/bench_spark_floors.py [--n 500000] [--no-write]``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench_streaming import drop_schema, lane_config, machine, produce
from benchmarks_md import write_section
from process_tree import measured

from shoplake.config import Settings, get_settings

SECTION = "## Streaming floors"
# 50,000 events/s on 2 cores: the CPU time one event may cost on the whole path (issue 4's target).
BUDGET_US = 2 / 50_000 * 1e6


def noop_query(spark: Any, settings: Settings, checkpoint: str) -> int:
    """Spark's Kafka source into the ``noop`` sink (availableNow); the rows it read."""
    query = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", settings.kafka_topic)
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


def run(n: int) -> list[dict[str, Any]]:
    from shoplake.streaming.jobs import run_catch_up
    from shoplake.streaming.session import spark_session

    base = get_settings()
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    lanes = [produce(base, n, f"{base.kafka_topic}.bench-stream-{stamp}-floor{i}")[0] for i in range(5)]
    spark = spark_session(base, app_name="shoplake-bench-floors", shuffle_partitions=4)

    def stage(lane: Settings, query: str) -> Callable[[], int]:
        def go() -> int:
            cfg = lane_config(lane, n)
            rows = run_catch_up(spark, cfg, (query,))[0].input_rows
            if query == "medallion":
                drop_schema(base, cfg)
            return rows

        return go

    noop_checkpoint = str(lane_config(lanes[2], n).checkpoint_root / "noop")
    plan: list[tuple[str, Callable[[], int]]] = [
        ("cold JVM: Kafka -> bronze (staged `bronze` query)", stage(lanes[0], "bronze")),
        ("Kafka -> medallion (warm-up of its code)", stage(lanes[1], "medallion")),
        ("warm JVM: Kafka -> noop sink", lambda: noop_query(spark, lanes[2], noop_checkpoint)),
        ("warm JVM: Kafka -> bronze (staged `bronze` query)", stage(lanes[3], "bronze")),
        ("warm JVM: Kafka -> medallion (ours: bronze, decode, silver, PostgreSQL)", stage(lanes[4], "medallion")),
    ]
    results = []
    for label, work in plan:
        rows, took = measured(work)
        result = {"stage": label, "rows": rows, **took}
        print(result, flush=True)
        results.append(result)
    spark.stop()
    return results


def render(n: int, machine_line: str, results: list[dict[str, Any]]) -> str:
    lines = [
        SECTION,
        "",
        f"- Machine: {machine_line}",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Command: `.venv/bin/python bench/bench_spark_floors.py --n {n}`",
        "- One SparkSession (`local[*]`, 2 cores, no AOT cache), the stages in this order, each on a fresh topic "
        f"of {n:,} events; CPU is the whole Spark process tree (driver JVM and Python workers).",
        "",
        "| stage | events | seconds (wall) | events/s (wall) | CPU s | CPU µs per event | share of the 40 µs budget "
        "| load at start |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        us = r["cpu"] / max(r["rows"], 1) * 1e6
        lines.append(
            f"| {r['stage']} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows'] / max(r['seconds'], 1e-9):,.0f} | "
            f"{r['cpu']:.1f} | {us:.1f} | {us / BUDGET_US:.0%} | {r['load']} |"
        )
    lines += [
        "",
        f"- Budget: 50,000 events/s on 2 cores leaves {BUDGET_US:.0f} CPU-µs per event for Kafka -> bronze -> "
        "silver -> gold together (and the local Kafka and PostgreSQL share the same cores).",
    ]
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
