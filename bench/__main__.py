"""Run the benchmarks one after another, each in a process of its own: ``python -m bench [--quick] [NAME ...]``.

Without ``--quick`` each benchmark runs at its full size and writes its BENCHMARKS.md section (over an hour
on two cores). ``--quick`` runs a small version of the everyday ones with ``--no-write`` (about 5 minutes): a
smoke check that they still run end to end, not figures to record. Benchmarks disturb each other on a 2-core
machine, so they never run side by side. They need the services they measure up
(``shoplake up postgres kafka registry``; ``bench_ml`` and ``bench_demo`` also MLflow and Airflow).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Final

# name -> the arguments of its quick version; the full runs use each module's defaults.
QUICK: Final[dict[str, list[str]]] = {
    "bench_ingest": ["--n", "100000", "--naive", "5000"],
    "bench_medallion_batch": ["--batches", "3", "--batch-size", "2000"],
    "bench_catch_up": ["--n", "2000", "--runs", "1"],
    "bench_service_cpu": [
        "--seconds",
        "20",
        "--idle-seconds",
        "10",
        "--warmup-seconds",
        "20",
        "--settle-seconds",
        "15",
    ],
    "bench_dbt": ["--rows", "20000", "--topup", "1000"],
}


def all_benchmarks() -> list[str]:
    return sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all, or the quick set with --quick)")
    parser.add_argument("--quick", action="store_true", help="small sizes, print only (BENCHMARKS.md untouched)")
    args = parser.parse_args()
    known = all_benchmarks()
    names = args.names or (list(QUICK) if args.quick else known)
    unknown = [n for n in names if n not in known or (args.quick and n not in QUICK)]
    if unknown:
        choices = sorted(QUICK) if args.quick else known
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(choices)}")
    for name in names:
        extra = [*QUICK[name], "--no-write"] if args.quick else []
        print(f"== {name} {' '.join(extra)}", flush=True)
        done = subprocess.run([sys.executable, "-m", f"bench.{name}", *extra], check=False)
        if done.returncode != 0:
            print(f"{name} failed with exit code {done.returncode}", file=sys.stderr)
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
