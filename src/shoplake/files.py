"""Files other processes read while we write them: replaced whole, or appended line by line with rotation.

Pidfiles, the stream's state file, health reports, dashboards and secrets are read by other processes (the
CLI, Airflow tasks, a browser) at any moment, so they are replaced in one ``rename``: a reader sees the old
file or the new one, never half of one. The temporary file gets a unique name in the same directory, so two
writers of the same target (two report runs, two sessions starting at once) never write into each other's
temporary file, and the rename never crosses a filesystem.

The streaming JSONL logs (per-batch progress, per-batch phases) grow by a line per micro-batch for as long as
the service runs, without bound. :func:`append_line` caps each at
``max_bytes`` by renaming it to ``<name>.1`` (replacing the previous one) before the line that would cross the
cap, so the disk holds at most two caps' worth; :func:`tail_lines` reads across the two, so readers of "the
latest batch" never see a gap right after a rotation.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

LOG_MAX_BYTES: Final = 64 * 1024 * 1024


def write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` atomically; the file gets ``mode`` (0o600 for secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(partial, mode)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise


def rotated(path: Path) -> Path:
    """Where :func:`append_line` moves a full log: ``progress.jsonl`` -> ``progress.jsonl.1``."""
    return path.with_name(path.name + ".1")


def append_results(path: Path, results: Iterable[DataclassInstance], *, at_s: float, seconds: float) -> None:
    """One JSON line per result (a dataclass) appended to ``path``, stamped with when the run started and how long
    it took: the continuous service's housekeeping records (log cleanup, compaction) one line per table this way.
    """
    for r in results:
        append_line(path, json.dumps({"at": round(at_s, 3), "seconds": round(seconds, 3), **asdict(r)}))


def append_line(path: Path, line: str, *, max_bytes: int = LOG_MAX_BYTES) -> None:
    """Append ``line`` (a newline is added) to ``path``, rotating it first if the line would cross ``max_bytes``.

    Safe across processes (a catch-up run in an Airflow task and the continuous service write the same
    progress log): an exclusive ``flock`` on the open file serialises writers, and a writer that waited while
    another rotated reopens the new file instead of appending to the rotated one.
    """
    data = (line + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with path.open("ab") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            if not _still_at(path, fh.fileno()):
                continue  # rotated while we waited for the lock
            size = os.fstat(fh.fileno()).st_size
            if size and size + len(data) > max_bytes:
                os.replace(path, rotated(path))
                continue  # the next round appends to a fresh file (our lock dies with this handle)
            fh.write(data)
            return


def _still_at(path: Path, fd: int) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino)


def tail_lines(path: Path, tail_bytes: int) -> list[str]:
    """The last lines in roughly ``tail_bytes`` of the log, continuing into the rotated file if needed.

    The first line returned may be cut; callers skip lines that do not parse.
    """
    chunks: list[bytes] = []
    wanted = tail_bytes
    for source in (path, rotated(path)):
        try:
            with source.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - wanted))
                chunks.append(fh.read())
        except FileNotFoundError:
            continue
        wanted -= size
        if wanted <= 0:
            break
    return b"".join(reversed(chunks)).decode(errors="replace").splitlines()
