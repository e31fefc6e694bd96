"""The freshness benchmark's medallion-per-slice trend (bench/medallion_trend.py) on records with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from bench.freshness_tail import Batch, Commit
from bench.medallion_trend import render, slices

pytestmark = pytest.mark.unit

START = 1_000.0


def test_batches_and_events_fall_in_the_slice_where_they_started_and_landed() -> None:
    batches = [
        Batch("medallion", 1, START + 10, START + 11),  # 1,000 ms, first slice
        Batch("medallion", 2, START + 50, START + 53),  # 3,000 ms, first slice
        Batch("medallion", 3, START + 70, START + 72),  # 2,000 ms, second slice
        Batch("gold_hourly_sales", 9, START + 20, START + 40),  # another query: not counted
    ]
    phases = {
        1: {"bronze_append": 100.0, "dedup_check": 10.0},
        2: {"bronze_append": 300.0, "dedup_check": 30.0},
        3: {"bronze_append": 500.0, "dedup_check": 90.0, "silver_append": 40.0},
    }
    commits = [
        Commit(START + 11, np.array([START + 5.0, START + 9.0, START + 10.0])),  # 6, 2, 1 s
        Commit(START + 53, np.array([START + 49.0])),  # 4 s
        Commit(START + 72, np.array([START - 30.0, START + 71.0])),  # warm-up event left out; 1 s
    ]

    first, second = slices(commits, batches, phases, start=START, end=START + 120, count=2, since=START)

    assert (first.start_min, first.end_min, second.start_min, second.end_min) == (0, 1, 1, 2)
    assert first.batches == 2
    assert first.batch_ms_mean == pytest.approx(2000)
    assert [name for name, _ in first.phases_ms] == ["bronze_append", "dedup_check"]
    assert [ms for _, ms in first.phases_ms] == pytest.approx([200, 20])
    assert first.events == 4
    assert first.silver_p50_s == pytest.approx(np.percentile([6, 2, 1, 4], 50))
    assert first.silver_p99_s == pytest.approx(np.percentile([6, 2, 1, 4], 99))
    assert (second.batches, second.events) == (1, 1)
    assert second.silver_p95_s == pytest.approx(1.0)
    assert dict(second.phases_ms) == {
        "bronze_append": pytest.approx(500),
        "dedup_check": pytest.approx(90),
        "silver_append": pytest.approx(40),
    }


def test_the_table_has_a_column_per_phase_and_a_dash_where_a_slice_lacks_it() -> None:
    batches = [Batch("medallion", 1, START + 10, START + 11), Batch("medallion", 2, START + 70, START + 71)]
    phases = {1: {"bronze_append": 100.0}, 2: {"bronze_append": 80.0, "dedup_check": 12.0}}
    rows = slices([], batches, phases, start=START, end=START + 90, count=2, since=START)

    lines = render(rows)

    assert "| minutes | batches | batch ms | bronze_append | dedup_check | events |" in lines[3]
    assert lines[5] == "| 0-0.8 | 1 | 1,000 | 100 | - | 0 | - |"
    assert lines[6] == "| 0.8-1.5 | 1 | 1,000 | 80 | 12 | 0 | - |"


def test_slices_of_about_ten_minutes_print_as_whole_minutes() -> None:
    # Producing ends a fraction of a second after the planned 100 minutes: slices of 10.0005 minutes.
    batch = Batch("medallion", 1, START + 1, START + 2)
    rows = slices([], [batch], {}, start=START, end=START + 6000.3, count=10, since=START)

    assert [line.split(" | ")[0] for line in render(rows)[5:8]] == ["| 0-10", "| 10-20", "| 20-30"]


def test_a_run_without_medallion_batches_says_so() -> None:
    rows = slices([], [], {}, start=START, end=START + 60, count=2, since=START)

    assert render(rows) == ["- Medallion per slice: no medallion batches were recorded."]
