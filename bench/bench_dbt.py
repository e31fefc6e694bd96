"""Benchmark: the dbt warehouse build on 1,000,000 transactions, then an incremental run after 10,000 more.

Targets (issue 5): full build (seed + run + test) <= 60 s; incremental run after 10,000 new transactions
<= 10 s. Both go through shoplake.warehouse.dbt_runner, i.e. exactly what `shoplake warehouse build` and
the dbt_orchestration DAG run (isolated dbt child, one per call).

Setup (not timed): PostgreSQL from the local stack, a dedicated database ``shoplake_dbt_bench`` (dropped
and recreated, so nobody's warehouse is touched), raw.transactions filled through the streaming sink's
upsert with rows from the ingestion generator (:mod:`shoplake.warehouse.raw_loader`). The history is loaded
first and stamped as loaded an hour ago (outside the incremental lookback window, as it would be by the
next 6-hourly DAG run); the 10,000 new transactions are loaded after the full build, as the stream would
deliver them.

Usage: python -m bench.bench_dbt [--rows 1000000] [--topup 10000] [--no-write]
Writes the "Warehouse (dbt)" section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from bench.benchmarks_md import write_section
from shoplake import stack as local_stack
from shoplake.config import Settings, get_settings
from shoplake.stack import postgres
from shoplake.warehouse import dbt_runner, raw_loader

BENCH_DB = "shoplake_dbt_bench"
SECTION = "## Warehouse (dbt)"
FULL_TARGET_S = 60.0
INCREMENTAL_TARGET_S = 10.0


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "unknown CPU")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_gb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")) / 1024 / 1024
    return f"{os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GB RAM, {platform.system()} {platform.release()}"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def fresh_database(base: Settings) -> Settings:
    with psycopg.connect(base.postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(BENCH_DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(BENCH_DB)))
    return base.with_env(POSTGRES_DB=BENCH_DB)


def cpu_seconds(settings: Settings) -> float:
    """CPU used so far by this process's children (the dbt child) and by PostgreSQL's exited backends.

    A backend's CPU is added to the postmaster's cutime/cstime when it exits, and dbt closes its
    connections at the end of each call, so the delta over a call is the work the call cost the machine
    whatever else was running - the load-independent companion of the wall-clock time.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    pid = int((postgres.data_dir(settings) / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    backends = (int(fields[13]) + int(fields[14])) / ticks  # cutime, cstime
    return children.ru_utime + children.ru_stime + backends


def timed_steps(
    settings: Settings, steps: list[dbt_runner.DbtStep]
) -> tuple[float, float, list[dbt_runner.StepResult]]:
    """Wall-clock seconds, CPU seconds (dbt + PostgreSQL) and the results of one runner call."""
    cpu0, started = cpu_seconds(settings), time.monotonic()
    results = dbt_runner.run_steps(settings, steps)
    return time.monotonic() - started, cpu_seconds(settings) - cpu0, results


def step_line(results: list[dbt_runner.StepResult]) -> str:
    return ", ".join(f"{r.step} {r.elapsed:.1f} s" for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--topup", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()

    base = get_settings()
    local_stack.up(base, ["postgres"])
    settings = fresh_database(base)

    t = time.monotonic()
    raw_loader.load(settings, args.rows, "bench-dbt-history", days=30.0)
    load_s = time.monotonic() - t
    print(f"loaded {args.rows:,} rows into raw.transactions in {load_s:.1f} s (setup, not timed)")
    # The history arrived long before the next DAG run: stamp it an hour earlier so it lies outside
    # fct_transactions' lookback window (var incremental_lookback_minutes), as it would in production.
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        conn.execute("update raw.transactions set loaded_at = loaded_at - interval '1 hour'")
        conn.execute("vacuum analyze raw.transactions")

    # The build a fresh warehouse gets: deps -> seed -> staging -> marts -> test (docs excluded: not in the target).
    full_load = load_average()
    full_s, full_cpu, full = timed_steps(settings, dbt_runner.build_steps(dbt_runner.BuildOptions(docs=False)))
    tests = full[-1]
    print(f"full build: {full_s:.1f} s, {full_cpu:.1f} CPU s ({step_line(full)}); {len(tests.nodes)} tests passed")

    raw_loader.load(settings, args.topup, "bench-dbt-topup", first_offset=args.rows, days=0.05)
    incremental_steps = [s for s in dbt_runner.build_steps() if s.name in ("run_staging", "run_marts")]
    inc_load = load_average()
    inc_s, inc_cpu, inc = timed_steps(settings, incremental_steps)
    print(f"incremental run after {args.topup:,} new rows: {inc_s:.1f} s, {inc_cpu:.1f} CPU s ({step_line(inc)})")
    test_s, test_cpu, _ = timed_steps(settings, [s for s in dbt_runner.build_steps() if s.name == "test"])
    print(f"tests after the incremental run: {test_s:.1f} s, {test_cpu:.1f} CPU s")

    with psycopg.connect(settings.postgres.dsn()) as conn:
        (fct_rows,) = conn.execute("select count(*) from marts.fct_transactions").fetchone() or (0,)
    if fct_rows != args.rows + args.topup:
        print(f"ERROR: fct_transactions has {fct_rows} rows, expected {args.rows + args.topup}", file=sys.stderr)
        return 1

    def verdict(value: float, target: float) -> str:
        return "meets" if value <= target else "MISSES"

    full_row = (
        f"| full build on {args.rows:,} transactions (deps + seed + run staging + run marts + test, "
        f"{len(tests.nodes)} tests) | {full_s:.1f} s | {full_cpu:.1f} s | <= {FULL_TARGET_S:.0f} s "
        f"| {verdict(full_s, FULL_TARGET_S)} |"
    )
    inc_row = (
        f"| incremental run (staging + marts) after {args.topup:,} new transactions | {inc_s:.1f} s "
        f"| {inc_cpu:.1f} s | <= {INCREMENTAL_TARGET_S:.0f} s | {verdict(inc_s, INCREMENTAL_TARGET_S)} |"
    )
    test_row = f"| all tests after the incremental run (info) | {test_s:.1f} s | {test_cpu:.1f} s | - | |"
    text = f"""{SECTION}

Machine: {machine()}. Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.
Command: `python -m bench.bench_dbt --rows {args.rows} --topup {args.topup}` (PostgreSQL 15 from the local stack,
dedicated database, raw.transactions filled by the streaming sink's upsert with generator rows).

| measurement | wall clock | CPU (dbt + PostgreSQL) | target | |
|---|---|---|---|---|
{full_row}
{inc_row}
{test_row}

Steps of the full build: {step_line(full)}. Incremental: {step_line(inc)}.
Load average (1/5/15 min) when each started: full {full_load}; incremental {inc_load}. Other jobs shared
the 2 cores, so wall-clock times are upper bounds; the CPU column is the work itself, whatever the load
(on an idle 2-core machine the wall clock cannot go below CPU / 2). Each call includes dbt's start-up in
its isolated child (~3-4 CPU s).
"""
    print(text)
    if not args.no_write:
        write_section(SECTION, text, base.project_dir / "BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
