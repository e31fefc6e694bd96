"""Which part of the streaming driver JVM grows: native memory tracking (NMT) over the steady part of a run.

The freshness benchmark samples the driver JVM's RSS, which says *that* it grows, not where. NMT (``-XX:
NativeMemoryTracking=summary``, a few per cent of overhead) counts what the JVM itself commits per area: Java
heap, class metadata, thread stacks, JIT code and the compiler's arenas, GC structures, symbols. A baseline is
taken when the warm-up ends and a diff when producing ends, next to the RSS at both moments: what RSS grew
beyond the JVM's own areas is memory NMT cannot see - RocksDB's (the gold state store, malloc'ed from JNI),
zlib/zstd buffers and what glibc keeps cached after a free.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

NMT_OPTION: Final = "-XX:NativeMemoryTracking=summary"
JAVA_OPTIONS_ENV: Final = "JDK_JAVA_OPTIONS"  # read by every JDK 9+ launcher: reaches the driver via spark-submit
_MB = 1024.0
_AREA = re.compile(
    r"^-\s+(?P<name>.+?) \(reserved=\d+KB(?: [+-]\d+KB)?, committed=(?P<committed>\d+)KB(?: (?P<delta>[+-]\d+)KB)?\)"
)
_TOTAL = re.compile(r"^Total: reserved=\d+KB(?: [+-]\d+KB)?, committed=(?P<committed>\d+)KB(?: (?P<delta>[+-]\d+)KB)?")


def parse_diff(text: str) -> dict[str, tuple[float, float]]:
    """``jcmd <pid> VM.native_memory summary.diff scale=KB`` -> area: (committed MB, change since baseline MB).

    The total is under the key ``"Total"``.
    """
    out = {}
    for line in text.splitlines():
        match = _TOTAL.match(line.strip()) or _AREA.match(line.strip())
        if match:
            name = match.groupdict().get("name") or "Total"
            out[name] = (int(match["committed"]) / _MB, int(match["delta"] or 0) / _MB)
    if "Total" not in out:
        raise ValueError(f"not a native memory summary diff: {text[:200]!r}")
    return out


def with_tracking(env: dict[str, str]) -> dict[str, str]:
    """``env`` with NMT switched on for the JVMs started from it (other options kept)."""
    options = env.get(JAVA_OPTIONS_ENV, "")
    return env if NMT_OPTION in options.split() else {**env, JAVA_OPTIONS_ENV: f"{options} {NMT_OPTION}".strip()}


def _jcmd(java_exe: str, pid: int, *command: str) -> str:
    jcmd = Path(java_exe).with_name("jcmd")
    # jcmd is a JVM itself: it must not start with the tracking option meant for the driver.
    env = {k: v for k, v in os.environ.items() if k != JAVA_OPTIONS_ENV}
    done = subprocess.run(
        [str(jcmd), str(pid), "VM.native_memory", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0 or "Native memory tracking is not enabled" in done.stdout:
        raise RuntimeError(f"jcmd VM.native_memory {' '.join(command)} failed: {done.stdout}{done.stderr}")
    return done.stdout


@dataclass
class NativeMemory:
    """Baseline, then diff, of one JVM, with its RSS at both moments (bytes)."""

    pid: int = 0
    java_exe: str = ""
    started: float = 0.0
    rss_start: int = 0
    result: dict[str, Any] = field(default_factory=dict)

    def baseline(self, pid: int, java_exe: str, rss: int) -> None:
        _jcmd(java_exe, pid, "baseline")
        self.pid, self.java_exe, self.started, self.rss_start = pid, java_exe, time.time(), rss

    def diff(self, rss: int) -> dict[str, Any]:
        areas = parse_diff(_jcmd(self.java_exe, self.pid, "summary.diff", "scale=KB"))
        minutes = max((time.time() - self.started) / 60, 1e-9)
        rss_growth = (rss - self.rss_start) / 1024 / 1024
        self.result = {"minutes": minutes, "areas": areas, "rss_growth_mb": rss_growth}
        return self.result


def render(result: dict[str, Any], *, top: int = 6) -> list[str]:
    """Markdown lines: the areas that grew most, the tracked total and what RSS grew beyond it."""
    if not result:
        return []
    minutes, areas = result["minutes"], dict(result["areas"])
    total_mb, total_delta = areas.pop("Total")
    grown = sorted(areas.items(), key=lambda kv: kv[1][1], reverse=True)[:top]
    untracked = result["rss_growth_mb"] - total_delta
    lines = [
        "",
        f"Driver JVM native memory tracking (`--native-memory`, NMT summary) over the {minutes:.1f} steady minutes:",
        "",
        "| JVM area | committed at the end, MB | change, MB | MB/min |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {name} | {mb:,.1f} | {delta:+,.1f} | {delta / minutes:+.2f} |" for name, (mb, delta) in grown]
    lines += [
        f"| **all tracked areas** | {total_mb:,.1f} | {total_delta:+,.1f} | {total_delta / minutes:+.2f} |",
        f"| RSS growth not tracked (RocksDB, zlib/zstd, glibc caches) | | {untracked:+,.1f} "
        f"| {untracked / minutes:+.2f} |",
    ]
    return lines
