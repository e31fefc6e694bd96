"""The bronze replay guard: which batches of a query run a Delta table already holds (real local tables)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import CommitProperties, write_deltalake

from shoplake.lakehouse.replay_guard import ReplayGuard

pytestmark = pytest.mark.unit


def _commit(path: Path, user_metadata: str | None = None) -> None:
    custom = {"userMetadata": user_metadata} if user_metadata is not None else None
    write_deltalake(
        str(path), pa.table({"value": [1]}), mode="append", commit_properties=CommitProperties(custom_metadata=custom)
    )


def test_a_fresh_table_holds_no_batch(tmp_path: Path) -> None:
    _commit(tmp_path)

    assert not ReplayGuard(str(tmp_path), "bronze-a").committed(0)


def test_the_last_tagged_batch_and_everything_before_it_are_replays(tmp_path: Path) -> None:
    guard = ReplayGuard(str(tmp_path), "bronze-a")
    _commit(tmp_path, guard.user_metadata(6))
    _commit(tmp_path, "maintenance, not a batch")  # e.g. OPTIMIZE after the batch

    fresh = ReplayGuard(str(tmp_path), "bronze-a")  # a restarted run

    assert fresh.committed(6) and fresh.committed(2)
    assert not fresh.committed(7)


def test_a_newer_commit_of_another_app_means_this_app_holds_nothing_newer(tmp_path: Path) -> None:
    _commit(tmp_path, ReplayGuard(str(tmp_path), "bronze-old").user_metadata(40))
    _commit(tmp_path, ReplayGuard(str(tmp_path), "bronze-new").user_metadata(0))

    assert not ReplayGuard(str(tmp_path), "bronze-old").committed(41)
    assert ReplayGuard(str(tmp_path), "bronze-new").committed(0)
    assert not ReplayGuard(str(tmp_path), "bronze-new").committed(1)


def test_a_run_answers_from_memory_after_its_first_lookup_and_looks_again_after_a_failure(tmp_path: Path) -> None:
    guard = ReplayGuard(str(tmp_path), "bronze-a")
    _commit(tmp_path, guard.user_metadata(0))
    assert guard.committed(0) and not guard.committed(1)

    # Another writer tags batch 1 behind this run's back: memory does not see it ...
    _commit(tmp_path, guard.user_metadata(1))
    assert not guard.committed(1)
    # ... until a failure makes the run forget what it knew.
    guard.forget()
    assert guard.committed(1)


def test_recording_a_batch_marks_it_and_older_ones_committed(tmp_path: Path) -> None:
    _commit(tmp_path)
    guard = ReplayGuard(str(tmp_path), "bronze-a")
    assert not guard.committed(3)

    guard.record(3)

    assert guard.committed(3) and not guard.committed(4)


def test_the_lookup_pages_back_through_a_long_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shoplake.lakehouse import replay_guard

    monkeypatch.setattr(replay_guard, "_PAGE", 2)
    guard = ReplayGuard(str(tmp_path), "bronze-a")
    _commit(tmp_path, guard.user_metadata(5))
    for _ in range(5):
        _commit(tmp_path)

    assert ReplayGuard(str(tmp_path), "bronze-a").committed(5)
    assert not ReplayGuard(str(tmp_path), "bronze-a").committed(6)
