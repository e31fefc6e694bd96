"""log_cleanup: which ``_delta_log`` files go, what keeps the rest, and a real (delta-rs) table after a cleanup."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from shoplake.lakehouse.log_cleanup import (
    LogFile,
    UnsupportedLogError,
    clean_table,
    clean_tables,
    complete_checkpoints,
    expired,
    parse,
    reader_floors,
    streaming_readers,
    time_floor,
)

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


def _v(version: int) -> str:
    return f"{version:020d}"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"{_v(7)}.json", LogFile(f"{_v(7)}.json", 7, "commit", 7)),
        (f"{_v(7)}.crc", LogFile(f"{_v(7)}.crc", 7, "checksum", 7)),
        (f"{_v(10)}.checkpoint.parquet", LogFile(f"{_v(10)}.checkpoint.parquet", 10, "checkpoint", 10)),
        (
            f"{_v(10)}.checkpoint.0000000001.0000000002.parquet",
            LogFile(f"{_v(10)}.checkpoint.0000000001.0000000002.parquet", 10, "checkpoint_part", 10, (1, 2)),
        ),
        (f"{_v(3)}.{_v(6)}.compacted.json", LogFile(f"{_v(3)}.{_v(6)}.compacted.json", 3, "compacted", 6)),
        # Hadoop's checksum sidecars go with their files, but never count as the file itself.
        (f".{_v(7)}.json.crc", LogFile(f".{_v(7)}.json.crc", 7, "sidecar", 7)),
        (f".{_v(10)}.checkpoint.parquet.crc", LogFile(f".{_v(10)}.checkpoint.parquet.crc", 10, "sidecar", 10)),
        ("_last_checkpoint", None),
        ("_commits", None),
        (".s3-optimization-0", None),
        ("00000000000000000007.json.tmp", None),
    ],
)
def test_names_are_parsed_into_what_they_are(name: str, expected: LogFile | None) -> None:
    assert parse(name) == expected


def test_a_v2_checkpoint_is_refused_rather_than_half_cleaned() -> None:
    with pytest.raises(UnsupportedLogError):
        parse(f"{_v(10)}.checkpoint.3a0d65cd-4056-49b8-937b-95f9e3ee90e5.json")


def _log(commits: range, checkpoints: tuple[int, ...], sidecars: bool = False) -> list[LogFile]:
    names = [f"{_v(v)}.json" for v in commits] + [f"{_v(v)}.crc" for v in commits]
    names += [f"{_v(v)}.checkpoint.parquet" for v in checkpoints]
    if sidecars:
        names += [f".{name}.crc" for name in list(names)]
    return [f for f in map(parse, names) if f is not None]


def test_the_log_starts_at_the_newest_checkpoint_not_after_the_floor() -> None:
    files = _log(range(30), (10, 20), sidecars=True)
    start, doomed = expired(files, floor=25, last_checkpoint=20)
    assert start == 20
    assert {f.version for f in doomed} == set(range(20))
    assert len(doomed) == 20 * 4 + 2  # json, crc and both sidecars per commit; checkpoint 10 and its sidecar
    start, doomed = expired(files, floor=19, last_checkpoint=20)
    assert start == 10
    assert {f.version for f in doomed} == set(range(10))


def test_nothing_goes_before_the_first_checkpoint_or_without_a_finished_one() -> None:
    files = _log(range(30), (10, 20))
    assert expired(files, floor=9, last_checkpoint=20) == (None, [])
    # _last_checkpoint is written once a checkpoint is complete: a newer checkpoint file may still be written.
    assert expired(files, floor=25, last_checkpoint=10)[0] == 10
    assert expired(files, floor=25, last_checkpoint=None) == (None, [])


def test_a_multi_part_checkpoint_counts_only_with_all_its_parts() -> None:
    part = f"{_v(20)}.checkpoint.{{}}.0000000002.parquet"
    files = [f for f in map(parse, [part.format("0000000001"), f"{_v(10)}.checkpoint.parquet"]) if f is not None]
    assert complete_checkpoints(files) == {10}
    second = parse(part.format("0000000002"))
    assert second is not None
    assert complete_checkpoints([*files, second]) == {10, 20}


def test_a_log_compaction_goes_only_when_its_whole_range_is_before_the_start() -> None:
    files = _log(range(30), (10, 20)) + [
        f for f in map(parse, [f"{_v(12)}.{_v(18)}.compacted.json", f"{_v(15)}.{_v(24)}.compacted.json"]) if f
    ]
    _, doomed = expired(files, floor=25, last_checkpoint=20)
    assert [f.name for f in doomed if f.kind == "compacted"] == [f"{_v(12)}.{_v(18)}.compacted.json"]


def test_the_time_floor_is_the_oldest_recent_commit() -> None:
    mtimes = {0: NOW - 900, 1: NOW - 600, 2: NOW - 300, 3: NOW}
    assert time_floor(mtimes, NOW - 600) == 1
    assert time_floor(mtimes, NOW + 1) == 3  # all older: the newest version is the floor
    assert time_floor({}, NOW) is None


def _reader(root: Path, name: str, table_id: str, planned: dict[int, int], committed: tuple[int, ...]) -> None:
    """A Structured Streaming checkpoint of a Delta source: offsets/<batch> per planned batch, commits/<batch>."""
    (root / name / "offsets").mkdir(parents=True)
    (root / name / "commits").mkdir()
    for batch, version in planned.items():
        source = {"sourceVersion": 1, "reservoirId": table_id, "reservoirVersion": version, "index": -1}
        lines = ["v1", json.dumps({"batchWatermarkMs": 0}), json.dumps(source)]
        (root / name / "offsets" / str(batch)).write_text("\n".join(lines))
    for batch in committed:
        (root / name / "commits" / str(batch)).write_text("v1\n{}")


def test_each_reader_holds_the_version_it_resumes_at(tmp_path: Path) -> None:
    _reader(tmp_path, "gold/hourly_sales", "table-a", {0: 4, 1: 9, 2: 12}, committed=(0, 1))
    _reader(tmp_path, "scorer", "table-a", {0: 3}, committed=())  # planned, never committed: its first batch
    _reader(tmp_path, "other", "table-b", {0: 1}, committed=(0,))
    readers = streaming_readers(tmp_path)
    assert sorted(readers) == ["gold/hourly_sales", "other", "scorer"]
    assert reader_floors(readers, "table-a") == {"gold/hourly_sales": 9, "scorer": 3}
    assert reader_floors(readers, "table-b") == {"other": 1}
    assert streaming_readers(tmp_path / "missing") == {}


def _table(path: Path, commits: int, checkpoints: tuple[int, ...]) -> None:
    """A real Delta table (delta-rs) of ``commits`` appends of one row each, checkpointed at ``checkpoints``."""
    for i in range(commits):
        write_deltalake(str(path), pa.table({"n": [i]}), mode="append")
        if i in checkpoints:
            DeltaTable(str(path)).create_checkpoint()


def _age(path: Path, seconds_before_now: float, versions: range, now: float = NOW) -> None:
    for v in versions:
        file = path / "_delta_log" / f"{_v(v)}.json"
        os.utime(file, (now - seconds_before_now, now - seconds_before_now))


def test_a_cleaned_table_reads_the_same_and_keeps_what_readers_need(tmp_path: Path) -> None:
    table, root = tmp_path / "t", tmp_path / "checkpoints"
    _table(table, 12, checkpoints=(4, 8))
    table_id = str(DeltaTable(str(table)).metadata().id)
    _age(table, 7200, range(12))
    _reader(root, "gold/x", table_id, {0: 6}, committed=(0,))

    result = clean_table("t", table, readers=streaming_readers(root), retention_s=1800, now_s=NOW)

    assert (result.floor, result.starts_at, result.held_by) == (6, 4, "gold/x")
    left = sorted(p.name for p in (table / "_delta_log").iterdir())
    assert left[0] == f"{_v(4)}.checkpoint.parquet"
    assert f"{_v(3)}.json" not in left and f"{_v(4)}.json" in left
    reread = DeltaTable(str(table))
    assert reread.version() == 11
    assert sorted(reread.to_pyarrow_table()["n"].to_pylist()) == list(range(12))

    # The reader moves on; recent commits are kept by the retention alone.
    _reader(root, "gold/x2", table_id, {0: 11}, committed=(0,))
    (root / "gold/x").rename(tmp_path / "retired")
    _age(table, 60, range(9, 12))
    result = clean_table("t", table, readers=streaming_readers(root), retention_s=1800, now_s=NOW)
    assert (result.floor, result.starts_at, result.held_by) == (9, 8, "retention")
    assert sorted(DeltaTable(str(table)).to_pyarrow_table()["n"].to_pylist()) == list(range(12))
    assert result.remaining == len(list((table / "_delta_log").iterdir()))


def test_unsupported_and_missing_tables_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    table = tmp_path / "t"
    _table(table, 3, checkpoints=(1,))
    (table / "_delta_log" / f"{_v(1)}.checkpoint.3a0d65cd-4056-49b8-937b-95f9e3ee90e5.json").write_text("{}")
    before = sorted(p.name for p in (table / "_delta_log").iterdir())
    with caplog.at_level(logging.WARNING, logger="shoplake.lakehouse.log_cleanup"):
        results = clean_tables({"t": table, "absent": tmp_path / "absent"}, checkpoint_root=tmp_path, retention_s=0)
    assert results == []
    assert "V2 checkpoint" in caplog.text
    assert sorted(p.name for p in (table / "_delta_log").iterdir()) == before


def test_the_service_records_each_cleanup_and_survives_a_failing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from shoplake.config import Settings
    from shoplake.lakehouse.log_cleanup import results_path
    from shoplake.runtime import jobs
    from tests.unit.config.streaming import resolve

    settings = Settings.from_env({"DELTA_BASE_PATH": str(tmp_path / "delta"), "SHOPLAKE_HOME": str(tmp_path / "home")})
    cfg = resolve({"maintenance": {"log_retention": "10 minutes"}}, settings)
    _table(cfg.silver_path, 12, checkpoints=(4, 8))
    _age(cfg.silver_path, 7200, range(12), now=time.time())  # the service cleans at the real clock's time

    jobs.clean_logs_recorded(cfg)

    lines = [json.loads(line) for line in results_path(cfg.metrics_path).read_text().splitlines()]
    assert [(r["table"], r["starts_at"], r["held_by"]) for r in lines] == [("silver", 8, "retention")]
    assert lines[0]["remaining"] == len(list((cfg.silver_path / "_delta_log").iterdir()))

    def broken(_: object) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(jobs, "clean_logs", broken)
    with caplog.at_level(logging.WARNING, logger="shoplake.runtime.jobs"):
        jobs.clean_logs_recorded(cfg)  # housekeeping: the service keeps running
    assert "Delta log cleanup failed" in caplog.text and "disk went away" in caplog.text
    assert len(results_path(cfg.metrics_path).read_text().splitlines()) == 1
