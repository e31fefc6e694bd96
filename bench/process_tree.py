"""CPU time and memory of a process tree, read from ``/proc`` (Linux), for the benchmarks' side columns.

On this shared 2-core machine wall-clock figures move 5x with other people's load; CPU seconds of the work
itself do not. A Spark application is a tree: the Python driver, its JVM (spark-submit's child), the JVM's
``pyspark.daemon`` and the Python workers it forks. Summing ``utime + stime`` of every live process plus
``cutime + cstime`` (what their exited and reaped children used) counts nearly all of it.

Nearly: a child reaped without a ``wait`` leaves no trace in its parent's ``cutime``. PySpark's worker daemon
ignores SIGCHLD, so a Python worker that exits mid-measurement (idle workers are stopped after a minute) takes
its whole CPU time with it, and a stage following one that used Python workers read as low as -7.7 CPU-s.
:func:`cpu_seconds` of this process therefore reads a CPU accounting cgroup that this process and its tree are
moved into on first use (:class:`_Cgroup`): the kernel charges every task in it, exited or not. Where no such
cgroup can be made (no write access, no cpuacct or cgroup v2 ``cpu.stat``), it falls back to the ``/proc`` sum.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
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


def proc_cpu_seconds(root: int) -> float:
    """CPU seconds ``root`` and its live descendants used, from ``/proc`` (misses children reaped without a wait)."""
    return sum(p.cpu_ticks for p in tree(root)) / _TICKS


class _Cgroup:
    """A CPU accounting cgroup of this process's own, its tree moved in: usage of everything that ran in it.

    cgroup v1 (a ``cpuacct`` hierarchy: ``cpuacct.usage``, ns) or v2 (``cpu.stat``'s ``usage_usec``), created beside
    this process's current cgroup. Usage counts from the move on, which is all a difference of two readings needs;
    children forked later inherit the cgroup.
    """

    def __init__(self, path: Path, usage: Callable[[Path], float]) -> None:
        self.path, self._usage = path, usage

    def seconds(self) -> float:
        return self._usage(self.path)

    @classmethod
    def create(cls) -> _Cgroup | None:
        """The cgroup, with this process's tree in it; None if this machine does not let us make one."""
        for base, usage in _hierarchies():
            # Earlier runs' cgroups: a run's own stays while its Spark JVM outlives the interpreter's exit hooks.
            for stale in base.glob("shoplake-bench-*"):
                with contextlib.suppress(OSError):
                    stale.rmdir()  # refused while a process is still in it
            path = base / f"shoplake-bench-{os.getpid()}"
            try:
                path.mkdir(exist_ok=True)
                for proc in tree(os.getpid()):
                    (path / "cgroup.procs").write_text(f"{proc.pid}\n")
                usage(path)
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
                continue
            cgroup = cls(path, usage)
            atexit.register(cgroup.remove)
            return cgroup
        return None

    def remove(self) -> None:
        """Back to the cgroup it came from, and this one removed (left in place while a child still runs)."""
        with contextlib.suppress(OSError):
            (self.path.parent / "cgroup.procs").write_text(f"{os.getpid()}\n")
            self.path.rmdir()


def _v1_usage(path: Path) -> float:
    return int((path / "cpuacct.usage").read_text()) / 1e9


def _v2_usage(path: Path) -> float:
    fields = dict(line.split() for line in (path / "cpu.stat").read_text().splitlines())
    return int(fields["usage_usec"]) / 1e6


def _hierarchies() -> list[tuple[Path, Callable[[Path], float]]]:
    """Where this process's cgroup is, per hierarchy that accounts CPU: (folder, usage reader), v1 first."""
    mounts: dict[str, Path] = {}  # controller ("" for v2) -> mount point
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, point, kind, options, *_ = line.split()
        if kind == "cgroup" and "cpuacct" in options.split(","):
            mounts["cpuacct"] = Path(point)
        elif kind == "cgroup2":
            mounts[""] = Path(point)
    found: list[tuple[Path, Callable[[Path], float]]] = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, where = line.split(":", 2)
        if "cpuacct" in controllers.split(",") and "cpuacct" in mounts:
            found.insert(0, (mounts["cpuacct"] / where.lstrip("/"), _v1_usage))
        elif controllers == "" and "" in mounts:
            found.append((mounts[""] / where.lstrip("/"), _v2_usage))
    return found


@functools.cache
def _own_cgroup() -> _Cgroup | None:
    return _Cgroup.create()


def cpu_seconds(root: int = 0) -> float:
    """CPU seconds used so far by ``root`` (default: this process) and its descendants.

    For this process, the accounting cgroup's usage when one could be made (exact, exited children included);
    compare only readings taken by the same process, since the cgroup counts from its first use on.
    """
    if root and root != os.getpid():
        return proc_cpu_seconds(root)
    own = _own_cgroup()
    return own.seconds() if own is not None else proc_cpu_seconds(os.getpid())


def cpu_accounting() -> str:
    """How :func:`cpu_seconds` of this process counts, for the benchmarks' reports."""
    own = _own_cgroup()
    if own is not None:
        return "cgroup (every process of the run, exited ones included)"
    return "/proc (live processes and reaped children; a child reaped without a wait is missed)"


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
