"""Delta log cleanup for tables committed every second, keeping every version a known reader still needs.

Workaround for: Delta 4.4 cleans a log only at checkpoints, only past ``delta.logRetentionDuration`` and never
inside the current UTC day, while every snapshot update lists the whole ``_delta_log`` folder. Delete when the
tables are catalog-managed (commits not listed from a folder) or Delta can clean to an explicit version.

Why: on a local (or HDFS) file system Delta lists the whole ``_delta_log`` folder on every snapshot update -
every append, every streaming read - and Delta's own cleanup is sized for tables committed a few times an
hour: it runs at checkpoints, deletes only files older than ``delta.logRetentionDuration`` (30 days by
default), and even with a short retention only up to the start of that UTC day. A table the medallion commits
to every second therefore kept growing all day, and bronze's and silver's appends slowed down with it
(measured in a 100-minute soak, commit 8a57345).

This cleanup applies the Delta protocol's metadata cleanup with a floor made of what reads the log:

* each streaming query whose checkpoint is under the checkpoint root: the version its last committed offsets
  (a Delta source's ``reservoirVersion``, matched by table id) resume from - a query stopped for a week
  resumes where it was;
* every version committed within ``log_retention``: ad-hoc readers, time travel, snapshots in use.

It deletes the commits, checksums and checkpoints older than the newest checkpoint at or before that floor -
a reader starts at a checkpoint and never reads what precedes it - with Hadoop's ``.crc`` sidecars of those
files. Data files are VACUUM's job (:mod:`shoplake.runtime.maintenance`).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from shoplake.lakehouse.checkpoints import committed_sources, planned_sources

log = logging.getLogger(__name__)

_VERSION: Final = r"(\d{20})"
# (pattern, kind) of the log files this cleanup may delete; anything else in the folder is left alone.
_KINDS: Final = (
    (re.compile(rf"^{_VERSION}\.json$"), "commit"),
    (re.compile(rf"^{_VERSION}\.crc$"), "checksum"),
    (re.compile(rf"^{_VERSION}\.checkpoint\.parquet$"), "checkpoint"),
    (re.compile(rf"^{_VERSION}\.checkpoint\.(\d{{10}})\.(\d{{10}})\.parquet$"), "checkpoint_part"),
    (re.compile(rf"^{_VERSION}\.{_VERSION}\.compacted\.json$"), "compacted"),
)
# A V2 checkpoint (UUID-named, with sidecar files in _sidecars/) is not handled: such a table is skipped.
_V2_CHECKPOINT: Final = re.compile(rf"^{_VERSION}\.checkpoint\.[0-9a-fA-F-]{{36}}\.(json|parquet)$")


class UnsupportedLogError(ValueError):
    """The log holds files this cleanup does not know how to clean safely (it then leaves the table alone)."""


@dataclass(frozen=True)
class LogFile:
    """One deletable entry of ``_delta_log``: its name, the version it belongs to and what it is."""

    name: str
    version: int
    kind: str
    # A log compaction covers a range of versions; for every other kind last == version.
    last: int
    part: tuple[int, int] | None = None


def parse(name: str) -> LogFile | None:
    """The :class:`LogFile` a name stands for (a Hadoop ``.crc`` sidecar as its file's); None for other names."""
    inner = name[1:-4] if name.startswith(".") and name.endswith(".crc") else name
    if _V2_CHECKPOINT.match(inner):
        raise UnsupportedLogError(f"V2 checkpoint {name}")
    for pattern, kind in _KINDS:
        found = pattern.match(inner)
        if found is None:
            continue
        version = int(found.group(1))
        if kind == "compacted":
            return LogFile(name, version, kind, int(found.group(2)))
        if kind == "checkpoint_part":
            part = (int(found.group(2)), int(found.group(3)))
            return LogFile(name, version, kind if inner == name else "sidecar", version, part)
        return LogFile(name, version, kind if inner == name else "sidecar", version)
    return None


def complete_checkpoints(files: Iterable[LogFile]) -> set[int]:
    """Versions with a whole checkpoint: the single file, or all parts of a multi-part one."""
    single, parts = set(), dict[int, set[int]]()
    totals: dict[int, int] = {}
    for f in files:
        if f.kind == "checkpoint":
            single.add(f.version)
        elif f.kind == "checkpoint_part" and f.part is not None:
            parts.setdefault(f.version, set()).add(f.part[0])
            totals[f.version] = f.part[1]
    return single | {v for v, seen in parts.items() if len(seen) == totals[v]}


def expired(files: list[LogFile], *, floor: int, last_checkpoint: int | None) -> tuple[int | None, list[LogFile]]:
    """(the checkpoint the log will start at, the files before it) for a table read no further back than ``floor``.

    The start is the newest whole checkpoint at or before both ``floor`` and ``last_checkpoint`` (the version in
    ``_last_checkpoint``, written only once a checkpoint is complete). Without one nothing is deleted.
    """
    if last_checkpoint is None:
        return None, []
    eligible = [v for v in complete_checkpoints(files) if v <= min(floor, last_checkpoint)]
    if not eligible:
        return None, []
    start = max(eligible)
    return start, sorted((f for f in files if f.last < start), key=lambda f: (f.version, f.name))


def time_floor(commit_mtimes: Mapping[int, float], cutoff_s: float) -> int | None:
    """The oldest version committed at or after ``cutoff_s`` (the newest version if all are older; None if none)."""
    if not commit_mtimes:
        return None
    recent = [v for v, mtime in commit_mtimes.items() if mtime >= cutoff_s]
    return min(recent) if recent else max(commit_mtimes)


Readers = Mapping[str, list[dict[str, Any]]]
"""Per streaming checkpoint (named relative to the checkpoint root): the source offsets it resumes from."""


def streaming_readers(checkpoint_root: Path) -> dict[str, list[dict[str, Any]]]:
    """The :data:`Readers` under ``checkpoint_root``, read once per cleanup and matched to each table by id.

    A query resumes from its last committed batch's end offsets; one that never committed a batch starts from
    its first planned one. A Delta source's offset holds ``reservoirVersion`` (with ``isStartingVersion`` it
    reads the snapshot at that version, which a checkpoint at or before it still provides).
    """
    readers: dict[str, list[dict[str, Any]]] = {}
    if not checkpoint_root.is_dir():
        return readers
    for offsets in sorted(checkpoint_root.rglob("offsets")):
        checkpoint = offsets.parent
        _, sources = committed_sources(checkpoint)
        readers[str(checkpoint.relative_to(checkpoint_root))] = sources or _first_planned(offsets)
    return readers


def reader_floors(readers: Readers, table_id: str) -> dict[str, int]:
    """Per reader of the table ``table_id``: the version it resumes at (the lowest, if it reads it twice)."""
    floors: dict[str, int] = {}
    for reader, sources in readers.items():
        versions = [int(s["reservoirVersion"]) for s in sources if s.get("reservoirId") == table_id]
        if versions:
            floors[reader] = min(versions)
    return floors


def _first_planned(offsets: Path) -> list[dict[str, Any]]:
    batches = sorted(int(p.name) for p in offsets.iterdir() if p.name.isdigit())
    return planned_sources(offsets.parent, batches[0]) if batches else []


def results_path(metrics_path: Path) -> Path:
    """``log_cleanup.jsonl`` beside the progress log: one line per table and cleanup (what the log holds now)."""
    return metrics_path.with_name("log_cleanup.jsonl")


@dataclass(frozen=True)
class CleanupResult:
    table: str
    floor: int | None  # the oldest version still readable after the cleanup
    starts_at: int | None  # the checkpoint the log starts at now (None: nothing could be deleted)
    deleted: int
    remaining: int
    held_by: str  # what set the floor: "retention" or the reader's name


def clean_table(
    name: str,
    path: Path,
    *,
    readers: Readers,
    retention_s: float,
    now_s: float | None = None,
) -> CleanupResult:
    """Delete ``path``'s log files that neither a reader's floor nor ``retention_s`` keeps (see module doc)."""
    log_dir = path / "_delta_log"
    names = [entry.name for entry in log_dir.iterdir()]
    files = [f for f in map(parse, names) if f is not None]  # an unsupported layout raises before anything
    try:
        table_id = str(DeltaTable(str(path)).metadata().id)
    except TableNotFoundError:
        return CleanupResult(name, None, None, 0, len(names), "no table")
    commits = {f.version: (log_dir / f.name).stat().st_mtime for f in files if f.kind == "commit"}
    now = time.time() if now_s is None else now_s
    floors = {"retention": time_floor(commits, now - retention_s)}
    floors.update(reader_floors(readers, table_id))
    known = {reader: v for reader, v in floors.items() if v is not None}
    if not known:
        return CleanupResult(name, None, None, 0, len(names), "no commits")
    held_by = min(known, key=lambda reader: known[reader])
    start, doomed = expired(files, floor=known[held_by], last_checkpoint=_last_checkpoint(log_dir))
    deleted = 0
    for f in doomed:
        try:
            (log_dir / f.name).unlink()
            deleted += 1
        except FileNotFoundError:  # Delta's own cleanup (or another run) got there first
            continue
    return CleanupResult(name, known[held_by], start, deleted, len(names) - deleted, held_by)


def _last_checkpoint(log_dir: Path) -> int | None:
    try:
        return int(json.loads((log_dir / "_last_checkpoint").read_text())["version"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def clean_tables(
    tables: Mapping[str, Path],
    *,
    checkpoint_root: Path,
    retention_s: float,
) -> list[CleanupResult]:
    """:func:`clean_table` for each existing table; a table with an unsupported log is skipped with a warning."""
    readers = streaming_readers(checkpoint_root)
    results: list[CleanupResult] = []
    for name, path in tables.items():
        if not (path / "_delta_log").is_dir():
            continue
        try:
            result = clean_table(name, path, readers=readers, retention_s=retention_s)
        except UnsupportedLogError as exc:
            log.warning("log cleanup skips %s: %s (not handled; Delta's own cleanup still applies)", path, exc)
            continue
        results.append(result)
    return results
