"""A read-only or full Delta file system: ``shoplake stream run --once`` refuses to start and says why.

The folders are real mounts (a small tmpfs, remounted read-only or filled up), because as root - which the
CI runs as - permission bits do not stop writes; a read-only mount or a full disk does. Mounting needs
root (CAP_SYS_ADMIN); elsewhere the tests are skipped with that reason. The CLI must exit with code 2 and
one line naming the folder, the cause and the setting, before Spark is started; nothing is written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoplake.config import Settings, env_for_children

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "delta"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=False, capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def stream_once(settings: Settings, delta: Path) -> subprocess.CompletedProcess[str]:
    env = env_for_children(settings, DELTA_BASE_PATH=str(delta))
    return subprocess.run(
        [sys.executable, "-m", "shoplake.cli", "stream", "run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_read_only_delta_path_is_refused_with_the_reason(stack: Settings, small_disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    done = stream_once(stack, small_disk)
    assert done.returncode == 2, done.stderr
    assert "read-only" in done.stderr and str(small_disk) in done.stderr and "DELTA_BASE_PATH" in done.stderr
    assert "Traceback" not in done.stderr


def test_full_delta_disk_is_refused_with_the_reason(stack: Settings, small_disk: Path) -> None:
    with (small_disk / "filler").open("wb") as fh:  # fill the 4 MB file system to the last block
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    done = stream_once(stack, small_disk)
    assert done.returncode == 2, done.stderr
    assert "no space left" in done.stderr and str(small_disk) in done.stderr
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # the failed probe left nothing behind


def test_too_little_free_space_is_refused_before_spark_starts(stack: Settings, small_disk: Path) -> None:
    done = stream_once(stack, small_disk)  # 4 MB free, DELTA_MIN_FREE_MB defaults to 512
    assert done.returncode == 2, done.stderr
    assert "MB free" in done.stderr and "DELTA_MIN_FREE_MB" in done.stderr
