"""Benchmark: wall time of ``shoplake demo`` and peak memory of the whole stack while it runs.

Memory = the summed RSS, sampled every second, of every supervised service's process group (pidfiles in
``$SHOPLAKE_HOME/run``, which includes Airflow's task workers) plus the demo process and its children (the
Spark catch-up). The cold case stops the stack first so the figure includes starting every service; the warm
case runs with every service up (dependencies and JVM artifacts are installed either way).

    python -m bench.bench_demo [--transactions 5000] [--cases cold,warm] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench import process_tree
from bench.benchmarks_md import write_section
from shoplake import stack
from shoplake.config import get_settings

SECTION: Final = "## Airflow / demo"
TARGET_S: Final = 300


def _procs() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, pgid, rss bytes) for every live process."""
    page = os.sysconf("SC_PAGE_SIZE")
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text().split()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after the (command name): state ppid pgrp ...
        ppid, pgid = int(fields[1]), int(fields[2])
        out[int(entry.name)] = (ppid, pgid, int(statm[1]) * page)
    return out


def stack_rss(run_dir: Path, root: int) -> int:
    groups = {
        int(t.split()[0]) for f in run_dir.glob("*.pid") if (t := f.read_text().strip()) and t.split()[0].isdigit()
    }
    procs = _procs()
    tree = {root}
    changed = True
    while changed:
        new = {pid for pid, (ppid, _, _) in procs.items() if ppid in tree and pid not in tree}
        tree |= new
        changed = bool(new)
    return sum(rss for pid, (_, pgid, rss) in procs.items() if pgid in groups or pid in tree)


def run_demo(transactions: int, cold: bool) -> dict[str, Any]:
    """One ``shoplake demo`` in a child process: wall time, peak stack memory, its steps."""
    settings = get_settings()
    if cold:
        stack.down(settings)
    load_before = process_tree.loadavg()
    cmd = [sys.executable, "-c", "import sys; from shoplake.cli import main; sys.exit(main(sys.argv[1:]))"]
    cmd += ["demo", "--json", "-n", str(transactions)]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, stack_rss(settings.home / "run", proc.pid))
            stop.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    elapsed = time.monotonic() - started
    stop.set()
    sampler.join()
    summary = json.loads(out) if proc.returncode == 0 else None
    return {
        "case": "stack stopped first (cold)" if cold else "every service already healthy (warm)",
        "load": load_before,
        "exit_code": proc.returncode,
        "seconds": elapsed,
        "peak_gb": peak / 2**30,
        "steps": [(str(s["step"]), float(s["seconds"] or 0)) for s in summary["steps"]] if summary else [],
    }


def section(runs: list[dict[str, Any]], transactions: int, argv: list[str]) -> str:
    lines = [
        SECTION,
        "",
        f"- Machine: {os.cpu_count()} cores (nproc), {platform.system().lower()}; "
        f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Command: `{' '.join(['.venv/bin/python -m bench.bench_demo', *argv])}`",
        f"- What: `shoplake demo --json -n {transactions:,}` in a child process (the four DAG runs through the real",
        "  scheduler); memory is the peak summed RSS, sampled every second, of every supervised service's",
        "  process group plus the demo and its Spark child. Dependencies and JVM artifacts were installed.",
        "",
        "| case | load at start (1/5/15 min) | exit | time | peak memory | steps (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        steps = ", ".join(f"{name} {secs:.1f}" for name, secs in run["steps"]) or "failed"
        lines.append(
            f"| {run['case']} | {run['load']} | {run['exit_code']} | **{run['seconds']:.1f} s** "
            f"| {run['peak_gb']:.2f} GB | {steps} |"
        )
    warm = [r for r in runs if "warm" in r["case"] and r["exit_code"] == 0]
    if warm:
        verdict = "met" if warm[0]["seconds"] <= TARGET_S else "MISSED"
        lines += [
            "",
            f"- Target <= {TARGET_S // 60} min with the stack already up: **{verdict}** ({warm[0]['seconds']:.1f} s).",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=5_000)
    parser.add_argument("--cases", default="cold,warm", help="cold (stack stopped first) and/or warm, in order")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not cases or any(c not in ("cold", "warm") for c in cases):
        parser.error("--cases: a comma-separated list of cold and warm")
    runs = [run_demo(args.transactions, case == "cold") for case in cases]
    text = section(runs, args.transactions, sys.argv[1:])
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return max(r["exit_code"] for r in runs)


if __name__ == "__main__":
    sys.exit(main())
