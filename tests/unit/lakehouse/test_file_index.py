"""Following a Delta table's files from its commit files (:mod:`shoplake.lakehouse.file_index`), on real tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from shoplake.lakehouse import file_index
from shoplake.lakehouse.file_index import DeltaFiles, UnsupportedTableError

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EVERYTHING = (T0 - timedelta(days=30), T0 + timedelta(days=30))


def _append(path: Path, start: datetime, rows: int = 2) -> None:
    times = [start + timedelta(seconds=i) for i in range(rows)]
    table = pa.table(
        {
            "transaction_id": pa.array([f"t{start.timestamp()}-{i}" for i in range(rows)], pa.string()),
            "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "event_date": pa.array([t.date() for t in times], pa.date32()),
        }
    )
    write_deltalake(str(path), table, mode="append", partition_by=["event_date"])


def _fresh(path: Path, low: datetime, high: datetime) -> set[str]:
    return set(DeltaFiles(str(path), "event_time").overlapping(low, high))


def _live_files(path: Path) -> set[str]:
    return set(pa.table(DeltaTable(str(path)).get_add_actions()).column("path").to_pylist())


def test_later_commits_are_read_from_the_log_without_reloading_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(tmp_path, T0)
    files = DeltaFiles(str(tmp_path), "event_time")
    assert set(files.overlapping(*EVERYTHING)) == _live_files(tmp_path)

    def no_reload(*_: object, **__: object) -> None:
        raise AssertionError("the table was loaded again")

    monkeypatch.setattr(file_index, "DeltaTable", no_reload)
    _append(tmp_path, T0 + timedelta(minutes=5))
    _append(tmp_path, T0 + timedelta(minutes=10))

    assert set(files.overlapping(*EVERYTHING)) == _live_files(tmp_path)
    assert len(_live_files(tmp_path)) == 3


def test_only_files_whose_range_meets_the_window_are_listed(tmp_path: Path) -> None:
    _append(tmp_path, T0)
    files = DeltaFiles(str(tmp_path), "event_time")
    files.overlapping(*EVERYTHING)  # loaded before the next commit, which is then read from its commit file
    _append(tmp_path, T0 + timedelta(hours=1))
    window = (T0 + timedelta(minutes=59), T0 + timedelta(minutes=61))

    assert files.overlapping(*window) == list(_fresh(tmp_path, *window))
    assert len(files.overlapping(*window)) == 1
    assert files.overlapping(T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)) == []


def test_a_compaction_s_removes_and_adds_are_followed(tmp_path: Path) -> None:
    for minute in range(4):
        _append(tmp_path, T0 + timedelta(minutes=minute))
    files = DeltaFiles(str(tmp_path), "event_time")
    files.overlapping(*EVERYTHING)

    DeltaTable(str(tmp_path)).optimize.compact()

    assert set(files.overlapping(*EVERYTHING)) == _live_files(tmp_path) == _fresh(tmp_path, *EVERYTHING)
    assert len(_live_files(tmp_path)) == 1


def test_changes_are_folded_into_the_listing_without_changing_the_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_index, "_FOLD_AT", 2)
    _append(tmp_path, T0)
    files = DeltaFiles(str(tmp_path), "event_time")
    files.overlapping(*EVERYTHING)
    for minute in range(1, 4):
        _append(tmp_path, T0 + timedelta(minutes=minute))
    DeltaTable(str(tmp_path)).optimize.compact()
    _append(tmp_path, T0 + timedelta(minutes=9))

    window = (T0 + timedelta(minutes=8), T0 + timedelta(minutes=10))
    assert set(files.overlapping(*EVERYTHING)) == _live_files(tmp_path)
    assert set(files.overlapping(*window)) == _fresh(tmp_path, *window)
    assert len(files._added) + len(files._removed) < 2


def test_a_log_cleaned_past_the_reader_reloads_the_table(tmp_path: Path) -> None:
    _append(tmp_path, T0)
    files = DeltaFiles(str(tmp_path), "event_time")
    files.overlapping(*EVERYTHING)
    for minute in range(1, 4):
        _append(tmp_path, T0 + timedelta(minutes=minute))
    table = DeltaTable(str(tmp_path))
    table.create_checkpoint()
    # What a log cleanup does to an idle reader: the commits it has not read yet are gone below the checkpoint.
    for version in range(1, table.version()):
        (tmp_path / "_delta_log" / f"{version:020d}.json").unlink()

    assert set(files.overlapping(*EVERYTHING)) == _live_files(tmp_path)
    assert len(_live_files(tmp_path)) == 4


def test_a_table_that_turns_on_deletion_vectors_is_refused(tmp_path: Path) -> None:
    _append(tmp_path, T0)
    files = DeltaFiles(str(tmp_path), "event_time")
    files.overlapping(*EVERYTHING)

    DeltaTable(str(tmp_path)).alter.set_table_properties({"delta.enableDeletionVectors": "true"})

    with pytest.raises(UnsupportedTableError, match="deletionVectors"):
        files.overlapping(*EVERYTHING)


def test_a_protocol_action_without_feature_lists_is_accepted(tmp_path: Path) -> None:
    _append(tmp_path, T0)
    files = DeltaFiles(str(tmp_path), "event_time")
    files.overlapping(*EVERYTHING)
    version = DeltaTable(str(tmp_path)).version() + 1
    protocol = {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2, "readerFeatures": None}}
    (tmp_path / "_delta_log" / f"{version:020d}.json").write_text(json.dumps(protocol) + "\n")

    assert set(files.overlapping(*EVERYTHING)) == _live_files(tmp_path)


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        (
            '{"minValues":{"event_time":"2026-03-01T12:00:00.123Z"},"maxValues":{"event_time":"2026-03-01T12:00:01Z"}}',
            (T0 + timedelta(milliseconds=123), T0 + timedelta(seconds=1)),
        ),
        (
            '{"minValues":{"event_time":"2026-03-01T13:00:00.000+01:00"},"maxValues":{"event_time":"2026-03-01T12:00:00"}}',
            (T0, T0),
        ),
        ('{"numRecords":3,"minValues":{},"maxValues":{"event_time":"2026-03-01T12:00:00Z"}}', (None, T0)),
        (None, (None, None)),
    ],
)
def test_statistics_times_are_read_as_utc_and_missing_ones_as_unknown(
    stats: str | None, expected: tuple[datetime | None, datetime | None]
) -> None:
    def micros(moment: datetime | None) -> int | None:
        return None if moment is None else int(moment.timestamp()) * 1_000_000 + moment.microsecond

    assert file_index._stats_range(stats, "event_time") == tuple(micros(m) for m in expected)
