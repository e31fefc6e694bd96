"""Benchmark ``shoplake up``: cold (fresh state), warm (initialised, stopped) and no-op (already running).

Cold runs against a brand-new SHOPLAKE_HOME whose ``jvm/`` points at the already-resolved artifacts, so
it measures initdb, Kafka storage formatting, the registry's and MLflow's schema creation and every
service's start - not Maven downloads. Warm restarts the same state; no-op calls ``up`` on a healthy
stack. Each figure is the wall time of the real ``shoplake up`` command in a subprocess. The services
of the configured SHOPLAKE_HOME are stopped first (the ports are shared) and restarted at the end if
they were running. Results replace the "Local stack" section of BENCHMARKS.md.

Usage: ``python -m bench.bench_stack [--repeat N] [--no-write]`` (with the usual environment).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.benchmarks_md import write_section
from shoplake import stack
from shoplake.config import Settings, env_for_children, get_settings
from shoplake.jvm import artifacts_dir

SECTION = "## Local stack"


def shoplake(env: dict[str, str], *args: str) -> float:
    """Run ``shoplake ARGS`` and return its wall time; fail loudly if it fails."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "shoplake.cli", *args], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"shoplake {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return elapsed


def fresh_home(settings: Settings) -> Path:
    """An empty state dir next to the configured one (so the postgres account can traverse it)."""
    settings.home.parent.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix=f"{settings.home.name}-bench-", dir=settings.home.parent))
    home.chmod(0o755)
    (home / "jvm").symlink_to(settings.jvm_dir, target_is_directory=True)
    return home


def measure(settings: Settings, repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"cold": [], "warm": [], "noop": []}
    results.update({f"warm {name}": [] for name in stack.SERVICES})
    for _ in range(repeat):
        home = fresh_home(settings)
        env = env_for_children(settings, SHOPLAKE_HOME=home)
        try:
            results["cold"].append(shoplake(env, "up"))
            shoplake(env, "down")
            results["warm"].append(shoplake(env, "up"))
            results["noop"].append(shoplake(env, "up"))
            shoplake(env, "down")
            for name in stack.SERVICES:  # per-service share of a warm start, in start order
                results[f"warm {name}"].append(shoplake(env, "up", name))
        finally:
            subprocess.run([sys.executable, "-m", "shoplake.cli", "down"], env=env, capture_output=True, check=False)
            shutil.rmtree(home, ignore_errors=True)
    return results


def machine() -> str:
    cores = os.cpu_count()
    with open("/proc/meminfo") as fh:
        kib = int(fh.readline().split()[1])
    return f"{cores} cores (nproc), {kib / 1024 / 1024:.0f} GB RAM, {sys.platform}"


def load_average() -> str:
    """1-minute load average: on a shared 2-core box, other work changes these figures a lot."""
    with open("/proc/loadavg") as fh:
        return fh.read().split()[0]


def render(results: dict[str, list[float]], repeat: int, load: str) -> str:
    def fmt(values: list[float]) -> str:
        if len(values) == 1:
            return f"{values[0]:.1f} s"
        return f"{statistics.median(values):.1f} s (min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"

    lines = [
        SECTION,
        "",
        f"- Machine: {machine()}; 1-min load average when the run started: {load}",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Command: `.venv/bin/python -m bench.bench_stack --repeat {repeat}`",
        "- What: wall time of `shoplake up` (all core services: postgres, kafka, registry, mlflow) in a subprocess,",
        "  JVM artifacts already resolved (Maven is not part of the figures).",
        "",
        "| case | time |",
        "| --- | --- |",
        f"| cold: fresh SHOPLAKE_HOME (initdb, Kafka format, registry/MLflow schemas) | {fmt(results['cold'])} |",
        f"| warm: state initialised, services stopped | {fmt(results['warm'])} |",
        f"| no-op: everything already healthy | {fmt(results['noop'])} |",
    ]
    for name in stack.SERVICES:
        lines.append(f"| warm, `shoplake up {name}` alone (dependencies already up) | {fmt(results[f'warm {name}'])} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch BENCHMARKS.md")
    args = parser.parse_args()
    settings = get_settings()
    for name in ("kafka", "registry"):
        artifacts_dir(settings, name)
    load = load_average()
    running = [row.name for row in stack.status(settings) if row.healthy and row.name in stack.SERVICES]
    stack.down(settings)
    try:
        results = measure(settings, args.repeat)
    finally:
        if running:
            stack.up(settings, running)
    text = render(results, args.repeat, load)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
