"""The benchmarks' CPU accounting counts a process that was reaped without a wait (PySpark's idle workers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
BURN_S = 0.5

# Run in a process of its own: the accounting moves its process into a cgroup. A child ignores SIGCHLD, as
# PySpark's worker daemon does, and forks a grandchild that burns BURN_S of CPU and exits unwaited.
SCRIPT = f"""
import json, os, signal, subprocess, sys, time
from bench import process_tree

CHILD = '''
import os, signal, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    while time.process_time() < {BURN_S}:
        pass
    os._exit(0)
while True:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    time.sleep(0.01)
'''
accounting = process_tree.cpu_accounting()
before, proc_before = process_tree.cpu_seconds(), process_tree.proc_cpu_seconds(os.getpid())
subprocess.run([sys.executable, "-c", CHILD], check=True)
print(json.dumps({{
    "accounting": accounting,
    "counted": process_tree.cpu_seconds() - before,
    "proc_counted": process_tree.proc_cpu_seconds(os.getpid()) - proc_before,
}}))
"""


def test_a_grandchild_reaped_without_a_wait_is_counted() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60, cwd=ROOT
    )
    result = json.loads(out.stdout)
    if not result["accounting"].startswith("cgroup"):
        pytest.skip(f"no CPU accounting cgroup can be made here ({result['accounting']})")
    assert result["counted"] >= BURN_S * 0.9
    # What the /proc sum alone saw of the same work: the grandchild's time is lost there.
    assert result["proc_counted"] < BURN_S * 0.9
