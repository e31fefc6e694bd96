"""What the continuous streaming service costs when little or nothing arrives: its fixed cost per batch.

Starts the service (every configured query, as ``shoplake stream start``) on a private lane
(``bench_freshness.make_lane``), lets it settle, then measures the CPU of its whole process tree:

1. **at rest** - ``--idle-seconds`` with nothing produced;
2. **at a trickle** - ``--rate`` events/s (default 100), measured over ``--seconds`` after ``--warmup-seconds``
   of the same rate (the first batches create the tables and compile the code).

It also reports how many medallion batches ran per minute at the trickle and the mean of each of their phases
(``batch_phases.jsonl``): at a trickle a batch's cost is its fixed cost, and the phases say where it goes.
Needs Kafka, the registry and PostgreSQL up (``shoplake up postgres kafka registry``).
``.venv/bin/python -m bench.bench_service_cpu [--rate 100] [--seconds 120] [--no-write]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import threading
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bench_freshness import Lane, cleanup, make_lane, produce_steady, toml_text
from bench.bench_streaming import machine
from bench.benchmarks_md import write_section
from bench.process_tree import cpu_seconds
from shoplake.config import Settings, env_for_children, get_settings
from shoplake.pipeline.config import load_streaming_config
from shoplake.runtime import service
from shoplake.runtime.batch_phases import phases_path
from shoplake.runtime.jobs import CONTINUOUS

SECTION = "## Streaming service CPU at rest and at a trickle"


def _share(pid: int, seconds: float) -> float:
    """The service tree's CPU over the next ``seconds``, in % of one core."""
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - started)


def _medallion_batches(path: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    return [r for r in records if r["query"] == "medallion"]


def _phase_means(batches: list[dict[str, Any]]) -> dict[str, float]:
    """Each phase's mean driver-JVM CPU milliseconds over ``batches``, the batch's wall ms and Spark counters."""
    if not batches:
        return {}
    names = sorted({name for r in batches for name in r["jvm_cpu_ms"]})
    means = {n: statistics.fmean(r["jvm_cpu_ms"].get(n, 0.0) for r in batches) for n in names}
    counters = ("total_ms", "spark_jobs", "spark_tasks", "codegen_compilations")
    return means | {key: statistics.fmean(r[key] for r in batches) for key in counters}


def _idle_and_trickle(lane: Lane, pid: int, args: argparse.Namespace, log: Path | None = None) -> dict[str, Any]:
    """The CPU share of process ``pid`` at rest, then at the trickle; the medallion batches ``log`` got meanwhile."""
    stop = threading.Event()
    time.sleep(args.settle_seconds)  # start-up (JVM, first empty triggers) is not at rest
    idle = _share(pid, args.idle_seconds)
    producer = threading.Thread(
        target=produce_steady,
        args=(lane.settings, args.rate, args.warmup_seconds + args.seconds + 5, stop),
        daemon=True,
    )
    producer.start()
    try:
        time.sleep(args.warmup_seconds)
        before = len(_medallion_batches(log)) if log else 0
        trickle = _share(pid, args.seconds)
        batches = _medallion_batches(log)[before:] if log else []
    finally:
        stop.set()
        producer.join()
    return {"idle_pct": idle, "trickle_pct": trickle, "batches": batches}


def _floor(lane: Lane, args: argparse.Namespace) -> dict[str, Any]:
    """The same measurement of Spark's own floor (:mod:`bench.stream_floor`) on the same topic, from its end offsets."""
    root = lane.root / "floor"
    env = env_for_children(lane.settings)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.stream_floor", "--root", str(root), "--mode", CONTINUOUS],
        env=env,
        cwd=lane.settings.project_dir,
    )
    try:
        res = _idle_and_trickle(lane, proc.pid, args)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    commits = len(list((root / "checkpoint" / "commits").glob("[0-9]*")))
    return {"idle_pct": res["idle_pct"], "trickle_pct": res["trickle_pct"], "batches_total": commits}


def _latest(settings: Settings) -> Settings:
    """The lane's settings with a config that starts reading at the topic's end."""
    doc = tomllib.loads(settings.streaming_config.read_text())
    doc["source"]["starting_offsets"] = "latest"
    path = settings.streaming_config.with_name("floor.toml")
    path.write_text(toml_text(doc))
    return settings.with_env(STREAMING_CONFIG=path)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    lane = make_lane(settings, datetime.now(UTC).strftime("%Y%m%d%H%M%S"))
    cfg = load_streaming_config(lane.settings)
    try:
        pid = service.start_background(lane.settings)
        try:
            ours = _idle_and_trickle(lane, pid, args, phases_path(cfg.metrics_path))
        finally:
            service.stop_background(lane.settings)
        # The floor starts at the topic's end: its first batches do not replay what the service already read.
        floor = _floor(dataclasses.replace(lane, settings=_latest(lane.settings)), args)
    finally:
        cleanup(settings, lane)
    return {
        "idle_pct": ours["idle_pct"],
        "trickle_pct": ours["trickle_pct"],
        "batches_per_minute": len(ours["batches"]) * 60 / args.seconds,
        "phases_ms": _phase_means(ours["batches"]),
        "floor": floor,
        "stages": list(cfg.continuous_stages),
        "triggers": {q: cfg.triggers[q] for q in cfg.continuous_stages},
    }


def render(args: argparse.Namespace, machine_line: str, res: dict[str, Any]) -> str:
    floor = res["floor"]
    phases = ", ".join(f"{name} {ms:.0f}" for name, ms in res["phases_ms"].items()) or "-"
    return "\n".join(
        [
            SECTION,
            "",
            f"- Command: `.venv/bin/python -m bench.bench_service_cpu --rate {args.rate} --seconds {args.seconds:g}"
            f" --idle-seconds {args.idle_seconds:g}`",
            f"- Machine: {machine_line}",
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- Service: queries {res['stages']}, triggers {res['triggers']}",
            "- Target (issue 27): <= 5 % of one core at rest, <= 25 % at 100 events/s.",
            "- Floor: Spark alone on the same topic, trigger and offsets settings, measured the same way right after"
            " the service: the Kafka source and two plain Delta appends (bronze, silver) per batch, no decode,"
            f" validation, PostgreSQL or gold ({floor['batches_total']} batches in its whole run).",
            "",
            "| state | CPU, % of one core: the service | Spark's floor (`bench.stream_floor`) | ratio |",
            "| --- | --- | --- | --- |",
            f"| at rest ({args.idle_seconds:g} s, nothing produced) | {res['idle_pct']:.1f} "
            f"| {floor['idle_pct']:.1f} | {res['idle_pct'] / floor['idle_pct']:.2f} |",
            f"| {args.rate} events/s ({args.seconds:g} s after {args.warmup_seconds:g} s of warm-up) "
            f"| {res['trickle_pct']:.1f} | {floor['trickle_pct']:.1f} "
            f"| {res['trickle_pct'] / floor['trickle_pct']:.2f} |",
            "",
            f"- At {args.rate} events/s: {res['batches_per_minute']:.1f} medallion batches per minute; per batch, mean"
            f" driver-JVM CPU ms per phase (they overlap: bronze runs beside the rest), wall ms in total"
            f" (total_ms), Spark jobs and tasks, and generated classes compiled: {phases}.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--warmup-seconds", type=float, default=60.0)
    parser.add_argument("--settle-seconds", type=float, default=30.0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    args = parser.parse_args()
    machine_line = machine()
    res = measure(args)
    text = render(args, machine_line, res)
    print(json.dumps(res, indent=1))
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
