"""CPU time and memory of a process tree, read from ``/proc`` (Linux), for the benchmarks' side columns.

On this shared 2-core machine wall-clock figures move 5x with other people's load; CPU seconds of the work
itself do not. A Spark application is a tree: the Python driver, its JVM (spark-submit's child), the JVM's
``pyspark.daemon`` and the Python workers it forks. Summing ``utime + stime`` of every live process plus
``cutime + cstime`` (what their exited and reaped children used) counts all of it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    cpu_ticks: int
    rss_pages: int


def read(pid: int) -> _Proc | None:
    """The process's current ``/proc`` figures; None if it has exited."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its closing parenthesis.
    fields = text.rsplit(")", 1)[1].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return _Proc(pid, ppid, utime + stime + cutime + cstime, int(fields[21]))


def tree(root: int) -> list[_Proc]:
    """``root`` and all its live descendants."""
    procs = [p for p in (read(int(d)) for d in os.listdir("/proc") if d.isdigit()) if p is not None]
    children: dict[int, list[_Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    top = next((p for p in procs if p.pid == root), None)
    if top is None:
        return []
    out, todo = [top], [top]
    while todo:
        for child in children.get(todo.pop().pid, []):
            out.append(child)
            todo.append(child)
    return out


def cpu_seconds(root: int = 0) -> float:
    """CPU seconds used so far by ``root`` (default: this process) and its descendants."""
    return sum(p.cpu_ticks for p in tree(root or os.getpid())) / _TICKS


def rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and its descendants (pages shared between them are counted per process)."""
    return sum(p.rss_pages for p in tree(root)) * _PAGE


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def measured(work: Callable[[], T]) -> tuple[T, dict[str, float | str]]:
    """Run ``work``: its result and what it took (wall ``seconds``, ``cpu`` of this process tree, start ``load``)."""
    load, before, started = loadavg(), cpu_seconds(), time.perf_counter()
    value = work()
    return value, {"seconds": time.perf_counter() - started, "cpu": cpu_seconds() - before, "load": load}
