"""Atomic replacement and rotating JSONL logs (shoplake.files)."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import stat
from pathlib import Path

import pytest

from shoplake.files import append_line, append_results, rotated, tail_lines, write_text
from shoplake.runtime.service import last_progress

pytestmark = pytest.mark.unit


def test_write_text_replaces_whole_file_with_the_given_mode(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "secret.txt"
    write_text(target, "first")
    write_text(target, "second", mode=0o600)
    assert target.read_text() == "second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["secret.txt"]


def test_failed_write_keeps_the_old_file_and_leaves_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_text(target, "old")
    with pytest.raises(UnicodeEncodeError):
        write_text(target, "half \ud800 written")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_two_targets_with_the_same_stem_do_not_share_a_temporary_file(tmp_path: Path) -> None:
    write_text(tmp_path / "latest.json", "{}")
    write_text(tmp_path / "latest.html", "<p>")
    assert (tmp_path / "latest.json").read_text() == "{}"
    assert (tmp_path / "latest.html").read_text() == "<p>"


def test_append_rotates_before_the_cap_and_keeps_one_rotated_file(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    lines = [f"line-{i:04d}-" + "x" * 39 for i in range(100)]  # 50 bytes each with the newline
    for line in lines:
        append_line(log, line, max_bytes=1_000)
    current, previous = log.read_text().splitlines(), rotated(log).read_text().splitlines()
    assert log.stat().st_size <= 1_000 and rotated(log).stat().st_size <= 1_000
    assert previous + current == lines[-len(previous + current) :]
    assert len(previous) == 20  # a full file: 20 lines of 50 bytes fill the 1,000-byte cap exactly
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.jsonl", "progress.jsonl.1"]


def test_a_line_longer_than_the_cap_is_still_written(tmp_path: Path) -> None:
    log = tmp_path / "phases.jsonl"
    append_line(log, "y" * 50, max_bytes=10)
    assert log.read_text() == "y" * 50 + "\n"


def _writer(log: str, worker: int) -> None:
    for i in range(150):
        append_line(Path(log), json.dumps({"w": worker, "i": i, "pad": "z" * 30}), max_bytes=24_000)


def test_concurrent_writers_lose_no_line_across_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_writer, args=(str(log), w)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=60)
        assert p.exitcode == 0
    # 600 lines of ~55 bytes = ~33 KB: exactly one rotation at 24 KB, so every line is in one of the two files.
    records = [json.loads(x) for f in (rotated(log), log) for x in f.read_text().splitlines()]
    assert sorted((r["w"], r["i"]) for r in records) == [(w, i) for w in range(4) for i in range(150)]
    assert rotated(log).stat().st_size <= 24_000


def test_tail_reads_into_the_rotated_file(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    rotated(log).write_text("a\nb\nc\n")
    log.write_text("d\n")
    assert tail_lines(log, 1_000) == ["a", "b", "c", "d"]
    assert tail_lines(log, 2) == ["d"]
    assert tail_lines(log, 4)[-2:] == ["c", "d"]
    assert tail_lines(tmp_path / "missing.jsonl", 100) == []


def test_last_progress_finds_a_query_whose_last_batch_was_rotated_away(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    append_line(log, json.dumps({"query": "gold_hourly_sales", "batch_id": 7}), max_bytes=120)
    append_line(log, json.dumps({"query": "medallion", "batch_id": 41, "pad": "p" * 60}), max_bytes=120)
    assert rotated(log).is_file()
    latest = last_progress(log)
    assert latest["gold_hourly_sales"]["batch_id"] == 7
    assert latest["medallion"]["batch_id"] == 41


def test_results_are_one_stamped_json_line_each(tmp_path: Path) -> None:
    @dataclasses.dataclass(frozen=True)
    class Result:
        table: str
        files: int

    path = tmp_path / "upkeep.jsonl"
    append_results(path, [Result("bronze", 3), Result("silver", 4)], at_s=100.12345, seconds=2.00049)

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"at": 100.123, "seconds": 2.0, "table": "bronze", "files": 3},
        {"at": 100.123, "seconds": 2.0, "table": "silver", "files": 4},
    ]
