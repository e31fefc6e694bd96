"""Pre-flight check of the Delta and checkpoint storage: writable, with room to write, before Spark starts.

Spark reports a read-only or full disk as a Java stack trace from deep inside a task, after a minute of
start-up, and a streaming query that cannot write its checkpoint may leave an operator guessing whether
data was lost. Checking the folders first turns these into one sentence naming the path, the cause and
the setting to change. The check writes (and removes) a small probe file, because permissions alone do
not tell the truth: root ignores them, while a read-only mount or a full disk stops everyone.

Nothing is lost when a write does fail mid-run: Delta commits atomically and the checkpoint only advances
after a commit, so the next run replays the interrupted micro-batch (see README "Reliability").
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Final

PROBE_BYTES: Final = 64 * 1024  # enough to hit ENOSPC on a nearly full disk, small enough to be free


class StorageError(RuntimeError):
    """A Delta/checkpoint folder cannot be written; the message says which, why, and what to change."""


def check_writable(folders: Iterable[tuple[Path, str]], min_free_mb: int) -> None:
    """Raise :class:`StorageError` unless every ``(folder, setting)`` can be created and written to.

    ``setting`` names the configuration that chose the folder (e.g. ``DELTA_BASE_PATH``), for the message.
    """
    for folder, setting in folders:
        _check_one(folder, setting, min_free_mb)


def _check_one(folder: Path, setting: str, min_free_mb: int) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {folder} ({setting}): {_reason(exc)}") from exc
    probe = folder / f".shoplake-write-probe-{uuid.uuid4().hex}"
    try:
        with probe.open("wb") as fh:
            try:
                fh.write(b"\0" * PROBE_BYTES)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                probe.unlink()  # only reached when the file was created
    except OSError as exc:
        raise StorageError(f"cannot write to {folder} ({setting}): {_reason(exc)}") from exc
    free_mb = shutil.disk_usage(folder).free // (1024 * 1024)
    if free_mb < min_free_mb:
        raise StorageError(
            f"only {free_mb} MB free on the file system of {folder} ({setting}); at least {min_free_mb} MB "
            "are required (DELTA_MIN_FREE_MB): free some space or point the setting elsewhere"
        )


def _reason(exc: OSError) -> str:
    hints = {
        errno.EROFS: "the file system is mounted read-only",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EACCES: "permission denied (check the owner and mode of the folder)",
        errno.EPERM: "operation not permitted (check the owner, mode and attributes of the folder)",
    }
    return hints.get(exc.errno or 0, exc.strerror or str(exc))
