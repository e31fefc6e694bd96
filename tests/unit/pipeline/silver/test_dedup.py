"""The dedup lookup of silver ids (delta-rs, no Spark) on real local Delta tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from shoplake.pipeline.silver.dedup import LookupUnavailableError, SilverIds

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _rows(ids: list[str], start: datetime) -> pa.Table:
    times = [start + timedelta(seconds=i) for i in range(len(ids))]
    return pa.table(
        {
            "transaction_id": pa.array(ids, pa.string()),
            "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "event_date": pa.array([t.date() for t in times], pa.date32()),
        }
    )


def _append(path: Path, ids: list[str], start: datetime) -> None:
    write_deltalake(str(path), _rows(ids, start), mode="append", partition_by=["event_date"])


def _ids(values: list[str]) -> pa.Array:
    return pa.array(values, pa.string())


def _file_of(path: Path, transaction_id: str) -> Path:
    table = DeltaTable(str(path))
    for rel in pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist():
        file = path / str(rel)
        if transaction_id in pq.read_table(file).column("transaction_id").to_pylist():
            return file
    raise AssertionError(f"{transaction_id} in no file")


def test_finds_exactly_the_stored_ids_among_the_batch(tmp_path: Path) -> None:
    _append(tmp_path, ["a", "b", "c"], T0)
    _append(tmp_path, ["d", "e"], T0 + timedelta(seconds=3))
    lookup = SilverIds(str(tmp_path))

    stored = lookup.stored(_ids(["b", "e", "x", "b"]), T0, T0 + timedelta(seconds=10))

    assert sorted(stored.to_pylist()) == ["b", "e"]


def test_sees_commits_made_after_the_first_lookup(tmp_path: Path) -> None:
    _append(tmp_path, ["a"], T0)
    lookup = SilverIds(str(tmp_path))
    window = (T0, T0 + timedelta(minutes=1))
    assert lookup.stored(_ids(["n"]), *window).to_pylist() == []

    _append(tmp_path, ["n"], T0 + timedelta(seconds=30))

    assert lookup.stored(_ids(["n", "m"]), *window).to_pylist() == ["n"]


def test_files_outside_the_batch_time_range_are_not_read(tmp_path: Path) -> None:
    _append(tmp_path, ["old"], T0 - timedelta(days=2))
    _append(tmp_path, ["now"], T0)
    # Unreadable if opened: the lookup must skip it on its statistics alone.
    _file_of(tmp_path, "old").write_bytes(b"not parquet")
    lookup = SilverIds(str(tmp_path))

    assert lookup.stored(_ids(["now", "old"]), T0, T0 + timedelta(seconds=1)).to_pylist() == ["now"]
    with pytest.raises(pa.ArrowInvalid):
        lookup.stored(_ids(["old"]), T0 - timedelta(days=3), T0)


def test_an_empty_table_holds_nothing(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path), _rows([], T0), partition_by=["event_date"])

    assert len(SilverIds(str(tmp_path)).stored(_ids(["a"]), T0, T0)) == 0


def test_the_id_cache_keeps_only_the_last_batch_files_within_its_bound(tmp_path: Path) -> None:
    for i in range(4):
        _append(tmp_path, [f"f{i}-{j}" for j in range(3)], T0 + timedelta(minutes=i))
    lookup = SilverIds(str(tmp_path), max_cached_ids=5)
    everything = (T0, T0 + timedelta(minutes=10))
    batch = _ids(["f0-1", "f3-2", "zz"])

    first = sorted(lookup.stored(batch, *everything).to_pylist())
    again = sorted(lookup.stored(batch, *everything).to_pylist())
    assert first == again == ["f0-1", "f3-2"]
    assert sum(len(ids) for ids in lookup._cache.values()) <= 5

    lookup.stored(_ids(["f3-0"]), T0 + timedelta(minutes=3), T0 + timedelta(minutes=3, seconds=2))
    assert [ids.to_pylist() for ids in lookup._cache.values()] == [["f3-0", "f3-1", "f3-2"]]


def test_a_table_with_deletion_vectors_is_refused(tmp_path: Path) -> None:
    dv = {"delta.enableDeletionVectors": "true"}
    write_deltalake(str(tmp_path), _rows(["a"], T0), partition_by=["event_date"], configuration=dv)

    with pytest.raises(LookupUnavailableError, match="deletionVectors"):
        SilverIds(str(tmp_path)).stored(_ids(["a"]), T0, T0)


def test_naive_times_are_rejected(tmp_path: Path) -> None:
    _append(tmp_path, ["a"], T0)

    with pytest.raises(ValueError, match="timezone-aware"):
        SilverIds(str(tmp_path)).stored(_ids(["a"]), T0.replace(tzinfo=None), T0)
