"""A cold catch-up as a user meets it: ``shoplake stream run --once`` over the demo's shape, start to exit.

Produces N generated transactions (default 5,000, the demo's count) spread over D days (default 21, the
demo's span) to a fresh topic, then runs ``shoplake stream run --once`` in a fresh process - JVM and Spark
session start included, medallion then gold - against tables, checkpoints and a PostgreSQL schema of its own,
and reports its wall time, the process tree's CPU, each query's seconds as the command printed them, and the
files in each gold table afterwards (the small-file figure: gold is partitioned by day).

Needs Kafka, the registry and PostgreSQL up (``shoplake up postgres kafka registry``).
``.venv/bin/python -m bench.bench_catch_up [--n 5000] [--days 21] [--runs 2] [--no-write]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deltalake import DeltaTable

from bench.bench_streaming import drop_schema, lane_config, machine
from bench.benchmarks_md import write_section
from bench.process_tree import cpu_seconds, loadavg
from shoplake.config import Settings, env_for_children, get_settings
from shoplake.pipeline.config import StreamingConfig
from shoplake.runtime.batch_phases import phases_path
from shoplake.runtime.jobs import CATCH_UP
from shoplake.runtime.maintenance import tables

SECTION = "## Streaming cold catch-up"
START = "2026-01-05T00:00:00Z"


def produce(settings: Settings, n: int, days: float, topic: str) -> Settings:
    from shoplake.ingestion.run import ingest

    lane = settings.with_env(KAFKA_TOPIC=topic)
    ingest(lane, n, 7, START, span=timedelta(days=days), verify=False)
    return lane


def config_file(cfg: StreamingConfig, settings: Settings) -> Path:
    """The lane's streaming config: the shipped file's shape with the lane's topic, tables and schema."""
    root = cfg.checkpoint_root.parent
    lines = [
        "[source]",
        f'topics = ["{cfg.topics[0]}"]',
        "[tables]",
        *(f'{name} = "{path.relative_to(settings.lake.base_path)}"' for name, path in tables(cfg).items()),
        "[paths]",
        f'checkpoints = "{cfg.checkpoint_root}"',
        f'progress_log = "{cfg.metrics_path}"',
        "[warehouse]",
        f'schema = "{cfg.warehouse_schema}"',
    ]
    path = root / "streaming.toml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def catch_up(settings: Settings, n: int, days: float) -> dict[str, Any]:
    """One cold ``shoplake stream run --once`` on a fresh lane of ``n`` events over ``days``."""
    topic = f"{settings.kafka.topic}.bench-stream-{datetime.now(UTC):%Y%m%d%H%M%S}"
    lane = produce(settings, n, days, topic)
    cfg = lane_config(lane, n)
    env = env_for_children(lane, STREAMING_CONFIG=str(config_file(cfg, settings)))
    load, before = loadavg(), cpu_seconds()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "shoplake.cli", "stream", "run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - before
    if done.returncode != 0:
        raise SystemExit(f"stream run --once failed ({done.returncode}):\n{done.stderr[-3000:]}")
    printed, _ = json.JSONDecoder().raw_decode(done.stdout)  # the command's JSON; log lines may follow
    stages = {s["query"]: s for s in printed}
    files = {
        name: len(DeltaTable(str(path)).file_uris())
        for name, path in (
            ("hourly_sales", cfg.gold_hourly_sales_path),
            ("customer_behaviour", cfg.gold_customer_windows_path),
            ("fraud_rates", cfg.gold_fraud_rates_path),
        )
    }
    phases = [json.loads(line) for line in phases_path(cfg.metrics_path).read_text().splitlines()]
    rows = drop_schema(settings, cfg)
    floor_load, before = loadavg(), cpu_seconds()
    started = time.perf_counter()
    floor_root = cfg.checkpoint_root.parent / "floor"
    subprocess.run(
        [sys.executable, "-m", "bench.stream_floor", "--root", str(floor_root), "--mode", CATCH_UP],
        env=env,
        cwd=settings.project_dir,
        timeout=1800,
        check=True,
    )
    floor = {"wall": time.perf_counter() - started, "cpu": cpu_seconds() - before, "load": floor_load}
    shutil.rmtree(cfg.checkpoint_root.parent, ignore_errors=True)
    result = {
        "wall": wall,
        "cpu": cpu,
        "load": load,
        "stages": stages,
        "gold_files": files,
        "raw_rows": rows,
        "batch_ms": {p["query"]: p["total_ms"] for p in phases},
        "floor": floor,
    }
    print(result, flush=True)
    return result


def render(n: int, days: float, machine_line: str, results: list[dict[str, Any]]) -> str:
    lines = [
        SECTION,
        "",
        f"- Command: `.venv/bin/python -m bench.bench_catch_up --n {n} --days {days:g} --runs {len(results)}`",
        f"- Machine: {machine_line}",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- What: {n:,} generated events over {days:g} days, then `shoplake stream run --once` in a fresh process"
        " (JVM and Spark session start, medallion, gold); target (issue 27) <= 25 s wall, <= 48 files per gold"
        " table.",
        "- Floor: right after each run, Spark alone on the same topic in a fresh process (`bench.stream_floor`, no"
        " AOT cache): session start, the same Kafka source, two plain Delta appends (bronze, silver); no decode,"
        " validation, PostgreSQL or gold.",
        "",
        "| run | load at start | wall s | CPU s (process tree) | medallion s (its batch) | gold s (its batch) |"
        " outside the queries s | files: hourly_sales / customer_behaviour / fraud_rates | PostgreSQL raw rows |"
        " floor: load at start | floor wall s | floor CPU s | wall ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, r in enumerate(results, 1):
        files, stages, batch, floor = r["gold_files"], r["stages"], r["batch_ms"], r["floor"]
        outside = r["wall"] - stages["medallion"]["seconds"] - stages["gold"]["seconds"]
        lines.append(
            f"| {i} | {r['load']} | {r['wall']:.1f} | {r['cpu']:.1f} "
            f"| {stages['medallion']['seconds']:.1f} ({batch['medallion'] / 1000:.1f}) "
            f"| {stages['gold']['seconds']:.1f} ({batch['gold'] / 1000:.1f}) | {outside:.1f} "
            f"| {files['hourly_sales']} / {files['customer_behaviour']} / {files['fraud_rates']} | {r['raw_rows']:,} "
            f"| {floor['load']} | {floor['wall']:.1f} | {floor['cpu']:.1f} | {r['wall'] / floor['wall']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--days", type=float, default=21.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    args = parser.parse_args()
    machine_line = machine()
    results = [catch_up(get_settings(), args.n, args.days) for _ in range(args.runs)]
    text = render(args.n, args.days, machine_line, results)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
