"""The freshness benchmark's gold-per-batch trend (bench/gold_trend.py) on Delta logs with a known answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.freshness_tail import Batch, read_phases
from bench.gold_trend import GoldCommit, read_commits, render, slices, trend

pytestmark = pytest.mark.unit


def _commit(log: Path, version: int, info: dict[str, Any]) -> None:
    log.mkdir(parents=True, exist_ok=True)
    lines = [{"add": {"path": f"part-{version}.parquet"}}, {"commitInfo": info}]
    (log / f"{version:020d}.json").write_text("\n".join(json.dumps(line) for line in lines) + "\n")


def _merge(at_s: float, inserted: int, copied: int, files_removed: int, ms: int) -> dict[str, Any]:
    # Delta writes every operation metric as a string.
    metrics = {
        "numTargetRowsInserted": str(inserted),
        "numTargetRowsCopied": str(copied),
        "numTargetFilesRemoved": str(files_removed),
        "executionTimeMs": str(ms),
    }
    return {"timestamp": int(at_s * 1000), "operation": "MERGE", "operationMetrics": metrics}


def test_commits_are_read_from_the_json_log_with_their_metrics(tmp_path: Path) -> None:
    log = tmp_path / "customer_behaviour" / "_delta_log"
    _commit(log, 0, {"timestamp": 100_000, "operation": "WRITE", "operationMetrics": {"numOutputRows": "500"}})
    _commit(log, 1, _merge(160.0, 40, 7, 2, 900))
    assert read_commits(tmp_path / "customer_behaviour") == [
        GoldCommit(100.0, "WRITE", 500, 0, 0, 0.0),
        GoldCommit(160.0, "MERGE", 40, 7, 2, 900.0),
    ]
    assert read_commits(tmp_path / "absent") == []


def test_slices_show_a_copy_cost_that_grows_with_the_table() -> None:
    # A table created at t=0 with 1,000 rows; each later MERGE inserts 100 rows and copies ever more of them,
    # the defect the trend is meant to catch. Slices of 60 s: the first holds the write and one MERGE.
    commits = [
        GoldCommit(0.0, "WRITE", 1000, 0, 0, 0.0),
        GoldCommit(30.0, "MERGE", 100, 1000, 4, 500.0),
        GoldCommit(70.0, "MERGE", 100, 1100, 4, 600.0),
        GoldCommit(90.0, "MERGE", 100, 1200, 6, 700.0),
    ]
    batches = [Batch("gold_x", 1, 29.0, 30.0), Batch("gold_x", 2, 68.0, 70.5), Batch("gold_x", 3, 88.0, 90.5)]
    first, second = slices(commits, batches, 0.0, 120.0, 2)
    assert (first.start_min, first.end_min, second.end_min) == (0.0, 1.0, 2.0)
    assert (first.table_rows, first.merges, first.rows_copied_mean, first.rows_copied_max) == (1100, 1, 1000.0, 1000)
    assert (second.table_rows, second.merges, second.rows_copied_mean, second.rows_copied_max) == (
        1300,
        2,
        1150.0,
        1200,
    )
    assert (second.files_removed_mean, second.merge_ms_mean) == (5.0, 650.0)
    assert (first.batches, first.batch_s_mean, second.batches, second.batch_s_mean) == (1, 1.0, 2, 2.5)


def test_rows_written_before_the_run_count_towards_the_size() -> None:
    (only,) = slices([GoldCommit(-5.0, "WRITE", 300, 0, 0, 0.0), GoldCommit(10.0, "MERGE", 5, 0, 0, 1.0)], [], 0, 60, 1)
    assert (only.table_rows, only.merges, only.batches, only.batch_s_mean) == (305, 1, 0, 0.0)


def test_trend_matches_each_table_to_its_query_and_renders_a_row_per_slice(tmp_path: Path) -> None:
    _commit(tmp_path / "gold" / "fraud_rates" / "_delta_log", 0, _merge(10.0, 3, 0, 0, 100))
    (tmp_path / "gold" / "not_a_table").mkdir()
    batches = [Batch("gold", 0, 9.0, 10.0), Batch("medallion", 0, 9.0, 19.0)]
    res = trend(tmp_path / "gold", batches, 0.0, 60.0, count=3)
    assert list(res) == ["fraud_rates"]
    assert [s.batches for s in res["fraud_rates"]] == [1, 0, 0]
    table = [line for line in render(res) if line.startswith("| fraud_rates |")]
    assert table[0] == "| fraud_rates | 0.0-0.3 | 3 | 1 | 0 / 0 | 0.0 | 100 | 1 | 1.00 | - |"
    assert len(table) == 3
    assert render({}) == ["- Gold per batch: no gold tables in this run."]


def test_phases_are_averaged_over_the_slice_batches_that_ran_them(tmp_path: Path) -> None:
    _commit(tmp_path / "gold" / "customer_behaviour" / "_delta_log", 0, _merge(10.0, 3, 0, 0, 100))
    log = tmp_path / "batch_phases.jsonl"
    records = [
        {"query": "gold", "batch_id": 0, "phases_ms": {"hourly_sales": 1000.0, "customer_behaviour": 4000.0}},
        {"query": "gold", "batch_id": 1, "phases_ms": {"hourly_sales": 9000.0, "customer_behaviour": 5000.0}},
        {"query": "gold", "batch_id": 2, "phases_ms": {"hourly_sales": 8000.0, "customer_behaviour": 6000.0}},
        {"query": "medallion", "batch_id": 1, "phases_ms": {"customer_behaviour": 1.0}},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    batches = [Batch("gold", 0, 1.0, 5.0), Batch("gold", 1, 20.0, 34.0), Batch("gold", 2, 40.0, 54.0)]
    first, second = trend(tmp_path / "gold", batches, 0.0, 60.0, count=2, phases=read_phases(log))["customer_behaviour"]
    assert first.phases == (("customer_behaviour", 2, 4.5),)
    assert second.phases == (("customer_behaviour", 1, 6.0),)
    assert render({"customer_behaviour": [first]})[-1].endswith("| customer_behaviour 4.5 (2) |")
