"""Benchmark the streaming medallion's catch-up throughput next to Kafka's own consumer (the raw ceiling).

One invocation, one topic, same broker:

* **ingest** - ``shoplake.ingestion.run.ingest`` writes N generated transactions to a fresh topic
  ``<topic>.bench-stream-<stamp>`` (not timed here; see the Ingestion section).
* **ceiling** - ``org.apache.kafka.tools.ConsumerPerformance`` (the kafka-tools jar of the broker's own
  classpath) reads the N messages: how fast anything on this machine can pull them out of Kafka.
* **ours** - :func:`shoplake.runtime.jobs.run_catch_up` with ``availableNow`` on a fresh SparkSession,
  fresh tables and checkpoints. ``--pipeline medallion`` (the default, what ``shoplake stream`` runs): the
  ``medallion`` query, Kafka -> bronze + quarantine + silver + PostgreSQL in one pass, then the gold
  aggregates; throughput is N / medallion seconds (it includes the PostgreSQL load). The
  SparkSession start (~15-30 s of JVM start-up) is excluded and reported on its own.

``--warm-up N`` first runs a catch-up of N events on a topic and tables of its own in the same SparkSession,
so the timed run measures a warm JVM (what a continuous service is) instead of a cold one (what an Airflow
catch-up is); its result goes to a section of its own, next to the cold one.

Usage: ``python -m bench.bench_streaming [--n 1000000] [--pipeline medallion] [--warm-up N]
[--no-write]``; Kafka, the registry and PostgreSQL must be up (``shoplake up postgres kafka registry``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from bench.benchmarks_md import write_section
from bench.process_tree import cpu_accounting, cpu_seconds, loadavg, measured
from shoplake.config import Settings, get_settings
from shoplake.jvm import artifacts_dir, classpath, find_java
from shoplake.pipeline.config import StreamingConfig

SECTION = "## Streaming"
WARM_SECTION = "## Streaming (warm JVM)"
LARGE_SECTION = "## Streaming (large backlog)"


def machine() -> str:
    """The machine line of a report; also where this process's CPU accounting starts (see :mod:`process_tree`)."""
    with open("/proc/meminfo") as fh:
        kib = int(fh.readline().split()[1])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores (nproc), {kib / 1024 / 1024:.0f} GB RAM, {sys.platform}; load avg at start {load}; "
        f"CPU counted by {cpu_accounting()}"
    )


def produce(settings: Settings, n: int, topic: str | None = None) -> tuple[Settings, dict[str, Any]]:
    from shoplake.ingestion.run import ingest

    topic = topic or f"{settings.kafka.topic}.bench-stream-{datetime.now(UTC):%Y%m%d%H%M%S}"
    bench = settings.with_env(KAFKA_TOPIC=topic)
    started = time.perf_counter()
    result = ingest(bench, n, 7, "2026-01-05T00:00:00Z", verify=False)
    return bench, {"topic": topic, "seconds": time.perf_counter() - started, "result": str(result)[:200]}


def ceiling(settings: Settings, n: int) -> dict[str, Any]:
    java = find_java(17)
    cp = classpath(artifacts_dir(settings, "kafka"))
    cmd = [
        java,
        "-Xmx1g",
        "-cp",
        cp,
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        settings.kafka.bootstrap_servers,
        "--topic",
        settings.kafka.topic,
        "--messages",
        str(n),
        "--timeout",
        "120000",
        "--group",
        f"bench-ceiling-{os.getpid()}",
    ]
    started = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    lines = [ln for ln in proc.stdout.splitlines() if re.match(r"^\d{4}-", ln)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"ConsumerPerformance failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
    fields = [f.strip() for f in lines[-1].split(",")]
    return {
        "messages": int(fields[4]),
        "per_second": float(fields[5]),
        "mb_per_second": float(fields[3]),
        "wall": wall,
        "cpu": cpu,
    }


PIPELINES = {
    "medallion": (("medallion", "gold"), ("medallion",)),
}


def lane_config(settings: Settings, n: int) -> StreamingConfig:
    """The streaming config of one bench lane: ``settings.kafka.topic``, tables and schema of its own."""
    from shoplake.pipeline.config import load_streaming_config

    stamp = settings.kafka.topic.rsplit(".bench-stream-", 1)[-1].replace("-", "_")
    root = settings.lake.base_path / f"bench-{stamp}"
    return dataclasses.replace(
        load_streaming_config(settings.with_env(DELTA_BASE_PATH=root)),  # every table below root
        topics=(settings.kafka.topic,),
        checkpoint_root=root / "checkpoints",
        metrics_path=root / "progress.jsonl",
        warehouse_schema=f"bench_{stamp}",
        max_offsets_per_trigger=max(n, 1),
    )


def drop_schema(settings: Settings, cfg: StreamingConfig) -> int:
    """Rows the lane left in PostgreSQL; its schema is dropped."""
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(cfg.warehouse_schema, cfg.warehouse_table))
        ).fetchone()
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(cfg.warehouse_schema)))
    return int(row[0]) if row else 0


def services_cpu(settings: Settings) -> float:
    """CPU seconds used so far by the local services (Kafka, the registry, PostgreSQL and its backends).

    They share the two cores with Spark, so their work for a stage (serving Kafka fetches, PostgreSQL's COPY
    and merge) is part of what the stage costs, though not of the Spark driver's CPU.
    """
    from shoplake.stack import process

    pids = (process.running_pid(settings.home, p.stem) for p in (settings.home / "run").glob("*.pid"))
    return sum(cpu_seconds(pid) for pid in pids if pid is not None)


def warm_up(spark: Any, settings: Settings, n: int, stages: tuple[str, ...]) -> dict[str, Any]:
    """A catch-up of ``n`` events on a lane of its own in the timed run's SparkSession: what a warm JVM has seen.

    A continuous service has compiled its hot code long before any given batch; a fresh JVM (an Airflow
    catch-up) compiles it during the batch. The warm-up's own figures are those of a cold JVM at size ``n``.
    """
    from shoplake.runtime.jobs import run_catch_up

    warm_settings, produced = produce(settings, n, f"{settings.kafka.topic}-warmup")
    cfg = lane_config(warm_settings, n)
    rows, took = measured(lambda: sum(run_catch_up(spark, cfg, (stage,))[0].input_rows for stage in stages))
    result = {"events": n, "rows": rows, **took, "topic": produced["topic"]}
    drop_schema(settings, cfg)
    print("warm-up", result, flush=True)
    return result


def ours(
    settings: Settings,
    n: int,
    pipeline: str,
    *,
    core_only: bool = False,
    warm_up_events: int = 0,
    aot_cache: bool = False,
) -> dict[str, Any]:
    from shoplake.runtime.class_sharing import driver_pid, vouch
    from shoplake.runtime.jobs import run_catch_up
    from shoplake.runtime.session import AOT_ACTION_CONF, spark_session

    cfg = lane_config(settings, n)
    app = "shoplake-bench-streaming"
    started = time.perf_counter()
    spark = spark_session(settings, app_name=app, shuffle_partitions=cfg.shuffle_partitions, aot_cache=aot_cache)
    session_seconds = time.perf_counter() - started
    aot = spark.conf.get(AOT_ACTION_CONF, "off") or "off"  # what the driver did with the AOT cache, for the report
    stages, cpu, services, load = {}, {}, {}, {}
    timed, core_stages = PIPELINES[pipeline]
    warm = warm_up(spark, settings, warm_up_events, core_stages) if warm_up_events else None
    for stage in core_stages if core_only else timed:
        # Stage by stage (what run_catch_up does) so each one's CPU time and load average can be read.
        load[stage] = loadavg()
        before, services_before = cpu_seconds(), services_cpu(settings)
        stages[stage] = run_catch_up(spark, cfg, (stage,))[0]
        cpu[stage] = cpu_seconds() - before
        services[stage] = services_cpu(settings) - services_before
        print(stage, stages[stage], f"cpu {cpu[stage]:.1f} s, load {load[stage]}", flush=True)
    if aot_cache:
        vouch(settings, driver_pid(spark))  # as a catch-up that did its work: the cache this JVM trains is kept
    silver = spark.read.format("delta").load(str(cfg.silver_path)).count()
    quarantine = spark.read.format("delta").load(str(cfg.quarantine_path)).count()
    spark.stop()
    warehouse = drop_schema(settings, cfg)
    return {
        "session_seconds": session_seconds,
        "aot": aot,
        "warm_up": warm,
        "stages": {
            k: {"seconds": v.seconds, "rows": v.input_rows, "cpu": cpu[k], "services_cpu": services[k], "load": load[k]}
            for k, v in stages.items()
        },
        "silver_rows": silver,
        "quarantine_rows": quarantine,
        "warehouse_rows": warehouse,
        "root": str(cfg.checkpoint_root.parent),
    }


# How the driver JVM started, per AOT cache plan (shoplake.runtime.class_sharing).
AOT_NOTES = {
    "off": ", started without an AOT cache",
    "use": ", started from its Java 25 AOT cache (trained by an earlier run: what every orchestrated catch-up after"
    " the first does)",
    "train": ", training its Java 25 AOT cache (a first run: the cache is written at exit, after the timing)",
    "none": ", no AOT cache available (no Java 25.0.3+, or another JVM training it)",
}


def render(n: int, load: str, ceil: dict[str, Any], res: dict[str, Any], pipeline: str, *, section: str) -> str:
    st = res["stages"]
    timed, core_stages = PIPELINES[pipeline]
    path = " -> ".join(("Kafka", *core_stages))
    core = sum(st[name]["seconds"] for name in core_stages)
    rate = n / core
    target = "meets" if rate >= 50_000 else "MISSES"
    warm = res["warm_up"]
    jvm = f"warm JVM (after a {warm['events']:,}-event warm-up catch-up)" if warm else "cold JVM"
    jvm += AOT_NOTES[res["aot"]]
    option = (
        (f" --warm-up {warm['events']}" if warm else "")
        + (" --core-only" if set(st) == set(core_stages) else "")
        + (" --aot-cache" if res["aot"] != "off" else "")
        + (" --large-backlog" if section == LARGE_SECTION else "")
    )
    lines = [
        section,
        "",
        f"- Machine: {load}",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Command: `.venv/bin/python -m bench.bench_streaming --n {n} --pipeline {pipeline}{option}`",
        f"- JVM: {jvm}. A continuous service runs warm; an orchestrated catch-up starts cold (section "
        f"{SECTION[3:]!r} vs {WARM_SECTION[3:]!r}).",
        "- Spark: `local[*]` (2 cores), 4 shuffle partitions, one availableNow batch per stage; Kafka, the",
        "  registry and PostgreSQL run on the same 2 cores. Session start-up excluded: "
        f"{res['session_seconds']:.1f} s.",
        "",
        "| stage | events | seconds (wall) | events/s (wall) | CPU s | events per CPU s | services CPU s | "
        "load at start |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| ceiling: Kafka ConsumerPerformance (Java) | {ceil['messages']:,} | {ceil['wall']:.1f} | "
        f"{ceil['per_second']:,.0f} (tool's own clock) | {ceil['cpu']:.1f} | {ceil['messages'] / ceil['cpu']:,.0f} "
        "| | |",
    ]
    if warm:
        lines.append(
            f"| warm-up catch-up (cold JVM, own topic and tables) | {warm['events']:,} | {warm['seconds']:.1f} | "
            f"{warm['events'] / max(warm['seconds'], 1e-9):,.0f} | {warm['cpu']:.1f} | "
            f"{warm['events'] / max(warm['cpu'], 1e-9):,.0f} | | {warm['load']} |"
        )
    for name in (name for name in timed if name in st):
        s = st[name]
        lines.append(
            f"| {name} | {s['rows']:,} | {s['seconds']:.1f} | {s['rows'] / max(s['seconds'], 1e-9):,.0f} | "
            f"{s['cpu']:.1f} | {s['rows'] / max(s['cpu'], 1e-9):,.0f} | {s['services_cpu']:.1f} | {s['load']} |"
        )
    core_cpu = sum(st[name]["cpu"] for name in core_stages)
    lines.append(
        f"| **{path} (catch-up)** | {n:,} | {core:.1f} | **{rate:,.0f}** | {core_cpu:.1f} | {n / core_cpu:,.0f} | "
        f"{sum(st[name]['services_cpu'] for name in core_stages):.1f} | |"
    )
    if all(name in st for name in timed):
        # The path ends in gold: the same events through every timed stage, one after the other.
        whole, whole_cpu, whole_services = (
            sum(st[name][key] for name in timed) for key in ("seconds", "cpu", "services_cpu")
        )
        lines.append(
            f"| Kafka -> {' -> '.join(timed)} (every stage, in sequence) | {n:,} | {whole:.1f} | "
            f"{n / whole:,.0f} | {whole_cpu:.1f} | {n / whole_cpu:,.0f} | {whole_services:.1f} | |"
        )
    lines += [
        "",
        f"- Target >= 50,000 events/s ({path}, wall clock): **{target}** ({rate:,.0f} events/s; "
        f"{rate / ceil['per_second']:.2f} of the raw consumer ceiling).",
        f"- CPU: {core_cpu:.1f} CPU-seconds for {' + '.join(core_stages)} (the Spark driver JVM and its Python "
        "workers; the services' own CPU is the column before the load), i.e. "
        f"{n / core_cpu:,.0f} events per CPU-second; with both cores to itself and perfect overlap that is at "
        f"most {2 * n / core_cpu:,.0f} events/s.",
        f"- Result check: silver {res['silver_rows']:,} rows, quarantine {res['quarantine_rows']:,}, "
        f"PostgreSQL raw {res['warehouse_rows']:,} (N = {n:,}).",
        "- The gold row counts are the silver rows the three aggregations consumed (each reads silver once).",
        "- Freshness and memory at a steady rate: section Streaming freshness (`python -m bench.bench_freshness`).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1_000_000, help="events to produce and process")
    parser.add_argument("--pipeline", choices=sorted(PIPELINES), default="medallion", help="which queries to time")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch BENCHMARKS.md")
    parser.add_argument(
        "--core-only", action="store_true", help="time the core stages only (no gold): quicker profiling runs"
    )
    parser.add_argument(
        "--aot-cache",
        action="store_true",
        help="start the driver like an orchestrated catch-up: from the Java 25 AOT cache (the first run trains it)",
    )
    parser.add_argument(
        "--large-backlog",
        action="store_true",
        help=f"write section {LARGE_SECTION!r}: a catch-up of a bigger --n, where the cold start weighs less",
    )
    parser.add_argument(
        "--warm-up",
        type=int,
        default=0,
        metavar="N",
        help="first run a catch-up of N events (own topic and tables) in the same SparkSession: warm-JVM figures",
    )
    args = parser.parse_args()
    if args.n < 1 or args.warm_up < 0:
        parser.error("--n must be >= 1 and --warm-up >= 0")
    load = machine()
    settings, produced = produce(get_settings(), args.n)
    print("produced", produced, flush=True)
    ceil = ceiling(settings, args.n)
    print("ceiling", ceil, flush=True)
    res = ours(
        settings,
        args.n,
        args.pipeline,
        core_only=args.core_only,
        warm_up_events=args.warm_up,
        aot_cache=args.aot_cache,
    )
    print("ours", res, flush=True)
    section = LARGE_SECTION if args.large_backlog else WARM_SECTION if res["warm_up"] else SECTION
    text = render(args.n, load, ceil, res, args.pipeline, section=section)
    print(text)
    if not args.no_write:
        write_section(section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
