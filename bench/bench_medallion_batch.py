"""Cost of one ``medallion`` micro-batch, phase by phase: the fixed cost that bounds streaming freshness.

At a steady 2,000 events/s a record waits for the running micro-batch and then for its own, so freshness is
about twice the batch time, and the batch time is mostly fixed cost (Delta commits, Spark jobs, code
compilation), not per-record work. This benchmark isolates it from other people's load as far as a shared
machine allows: it produces ``--batches`` x ``--batch-size`` events into a private topic, runs the medallion
in catch-up mode with ``maxOffsetsPerTrigger = --batch-size`` (so every micro-batch has the size a steady
stream's would), and prints per phase the median wall time and driver-JVM CPU time over the batches after
the first (``batch_phases.jsonl``, :mod:`shoplake.runtime.batch_phases`), plus Spark jobs/stages/tasks and
code compilations per batch, the whole process tree's CPU and the load average.

Needs Kafka, the registry and PostgreSQL up (``shoplake up postgres kafka registry``).
``.venv/bin/python -m bench.bench_medallion_batch --batches 12 --batch-size 4000``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
import tomllib
from datetime import UTC, datetime
from typing import Any

from bench.bench_freshness import cleanup, make_lane, produce_steady, toml_text
from bench.benchmarks_md import write_section
from bench.process_tree import cpu_seconds, loadavg
from shoplake.config import get_settings
from shoplake.pipeline.config import load_streaming_config
from shoplake.runtime.batch_phases import phases_path

SECTION = "## Streaming micro-batch cost"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=12, help="micro-batches to run (the first is warm-up)")
    parser.add_argument("--batch-size", type=int, default=4000, help="events per micro-batch (2 s at 2,000/s)")
    parser.add_argument("--keep", action="store_true", help="keep the run's topic, tables and schema")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch BENCHMARKS.md")
    args = parser.parse_args()
    if args.batches < 2 or args.batch_size < 1:
        parser.error("--batches >= 2 and --batch-size >= 1 are required")

    settings = get_settings()
    lane = make_lane(settings, datetime.now(UTC).strftime("%Y%m%d%H%M%S"))
    doc = tomllib.loads(lane.settings.streaming_config.read_text())
    doc["pipeline"]["continuous"] = ["medallion"]
    doc["source"]["max_offsets_per_trigger"] = args.batch_size
    lane.settings.streaming_config.write_text(toml_text(doc))
    total = args.batches * args.batch_size
    produced = produce_steady(lane.settings, 50_000, total / 50_000, threading.Event())
    print(f"lane {lane.root}: produced {produced['sent']} events", flush=True)

    from shoplake.runtime import service
    from shoplake.runtime.jobs import run_catch_up

    cfg = load_streaming_config(lane.settings)
    spark = service._session(lane.settings, cfg, "bench-medallion-batch")
    load_start, cpu_start, started = loadavg(), cpu_seconds(), time.monotonic()
    try:
        run_catch_up(spark, cfg, ("medallion",))
    finally:
        spark.stop()
    wall, cpu = time.monotonic() - started, cpu_seconds() - cpu_start
    lines = [json.loads(line) for line in phases_path(cfg.metrics_path).read_text().splitlines()]
    if not args.keep:
        cleanup(settings, lane)
    summary = (
        f"{len(lines)} batches, {total:,} events: {wall:.1f} s wall, {cpu:.1f} CPU-s of the process tree "
        f"({cpu / total * 1e6:.0f} us/event); load average start {load_start}, end {loadavg()}"
    )
    text = "\n".join(
        [
            SECTION,
            "",
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} cores (nproc), shared.",
            f"- Command: `.venv/bin/python -m bench.bench_medallion_batch --batches {args.batches} "
            f"--batch-size {args.batch_size}`",
            f"- {summary}.",
            "",
            *report(lines[1:], args.batch_size),
        ]
    )
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return 0


def report(lines: list[dict[str, Any]], batch_size: int) -> list[str]:
    """Markdown: the median of each phase and counter over ``lines`` (the batches after the first)."""
    names = list(dict.fromkeys(name for line in lines for name in line["phases_ms"]))
    out = [
        f"Median over {len(lines)} micro-batches of {batch_size:,} events (the first, warm-up, excluded):",
        "",
        "| phase | wall ms | driver JVM CPU ms |",
        "| --- | --- | --- |",
    ]
    for name in [*names, "total"]:
        walls = [line["total_ms"] if name == "total" else line["phases_ms"].get(name, 0.0) for line in lines]
        cpus = [
            sum(line["jvm_cpu_ms"].values()) if name == "total" else line["jvm_cpu_ms"].get(name, 0.0) for line in lines
        ]
        out.append(f"| {name} | {statistics.median(walls):,.0f} | {statistics.median(cpus):,.0f} |")
    out += ["", "| per batch | median |", "| --- | --- |"]
    for key in ("spark_jobs", "spark_stages", "spark_tasks", "codegen_compilations"):
        out.append(f"| {key} | {statistics.median(line[key] for line in lines):,.0f} |")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
