"""Benchmark: wall time of ``shoplake demo`` and peak memory of the whole stack while it runs.

Memory = the summed RSS, sampled every second, of every supervised service's process group (pidfiles in
``$SHOPLAKE_HOME/run``, which includes Airflow's task workers) plus the demo process and its children (the
Spark catch-up). ``--cold-stack`` stops the stack first so the figure includes starting every service
(dependencies and JVM artifacts are installed either way: "warm machine").

    python -m bench.bench_demo [--transactions 5000] [--cold-stack]
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

from shoplake import stack
from shoplake.config import get_settings


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=5_000)
    parser.add_argument("--cold-stack", action="store_true", help="stop the stack first")
    parser.add_argument("--summary-out", type=Path, help="also write the demo's JSON summary here")
    args = parser.parse_args()
    settings = get_settings()
    if args.cold_stack:
        stack.down(settings)
    load_before = os.getloadavg()[0]
    cmd = [sys.executable, "-c", "import sys; from shoplake.cli import main; sys.exit(main(sys.argv[1:]))"]
    cmd += ["demo", "--json", "-n", str(args.transactions)]
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
    if args.summary_out and summary:
        args.summary_out.write_text(json.dumps(summary, indent=2))
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.system().lower()}",
        "load_1min_before": round(load_before, 1),
        "command": " ".join(["python -m bench.bench_demo", *sys.argv[1:]]),
        "exit_code": proc.returncode,
        "demo_seconds": round(elapsed, 1),
        "peak_stack_rss_gb": round(peak / 2**30, 2),
        "steps": [(s["step"], s["state"], s["seconds"]) for s in summary["steps"]] if summary else None,
    }
    print(json.dumps(result, indent=2))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
