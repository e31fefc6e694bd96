"""The freshness benchmark's reading of silver's commits: only data changes count as newly visible rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.bench_freshness import CommitLog

pytestmark = pytest.mark.unit


def _write(log: Path, version: int, actions: list[dict[str, object]]) -> None:
    log.mkdir(parents=True, exist_ok=True)
    (log / f"{version:020d}.json").write_text("".join(json.dumps(a) + "\n" for a in actions))


def _add(path: str, records: int, data_change: bool) -> dict[str, object]:
    return {"add": {"path": path, "dataChange": data_change, "stats": json.dumps({"numRecords": records})}}


def test_a_compaction_commit_adds_no_visible_rows(tmp_path: Path) -> None:
    log = tmp_path / "silver" / "_delta_log"
    _write(log, 0, [_add("a.parquet", 3, True), {"commitInfo": {"operation": "WRITE"}}])
    _write(log, 1, [_add("b.parquet", 2, True)])
    compaction: list[dict[str, object]] = [
        {"remove": {"path": "a.parquet", "dataChange": False}},
        {"remove": {"path": "b.parquet", "dataChange": False}},
        _add("ab.parquet", 5, False),
        {"commitInfo": {"operation": "OPTIMIZE"}},
    ]
    _write(log, 2, compaction)

    commits = CommitLog(tmp_path / "silver").read()

    assert [(files, records) for _, files, records in commits] == [(["a.parquet"], 3), (["b.parquet"], 2), ([], 0)]
