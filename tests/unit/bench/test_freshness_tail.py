"""The freshness benchmark's tail attribution (bench/freshness_tail.py) on records with a known answer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bench.freshness_tail import (
    Batch,
    CheckpointTimes,
    Commit,
    Compaction,
    attribute,
    latencies,
    read_batches,
    read_compactions,
    read_phases,
    render,
    render_compactions,
)

pytestmark = pytest.mark.unit

# Four medallion batches; the third is long (3 s) and a gold batch runs inside it.
BATCHES = [
    Batch("medallion", 10, 0.0, 1.0),
    Batch("medallion", 11, 1.0, 2.0),
    Batch("medallion", 12, 2.0, 5.0),
    Batch("medallion", 13, 5.0, 6.0),
    Batch("gold_hourly_sales", 3, 2.5, 3.0),
]
# Ten events per commit: produced at, committed at -> latency 0.9, 1.4, 3.4 (the long batch), 1.9 s.
COMMITS = [
    Commit(0.9, np.full(10, 0.0)),
    Commit(1.9, np.full(10, 0.5)),
    Commit(4.9, np.full(10, 1.5)),
    Commit(5.9, np.full(10, 4.0)),
]
PHASES = {
    10: {"silver_append": 400.0, "bronze_append": 500.0},
    11: {"silver_append": 400.0, "bronze_append": 500.0},
    12: {"silver_append": 2000.0, "bronze_append": 500.0},
    13: {"silver_append": 400.0, "bronze_append": 500.0},
}


def test_the_tail_is_traced_to_the_long_batch_and_what_ran_beside_it() -> None:
    compaction = Compaction(Batch("compaction", 0, 2.2, 2.8), {"silver": (40, 2)})
    res = attribute(COMMITS, BATCHES, PHASES, [3.5], since=-1.0, compactions=[compaction])
    assert res["events"] == 40
    assert res["cut_s"] == pytest.approx(3.4)
    assert res["tail"] == pytest.approx({"wait_s": 0.5, "own_s": 2.9})
    assert res["all"] == pytest.approx({"wait_s": 0.5, "own_s": 1.4})
    tail = res["tail_batches"]
    assert tail["batches"] == 1
    assert tail["median_s"] == pytest.approx(3.0)
    assert tail["before_median_s"] == pytest.approx(1.0)
    assert tail["gold_overlap"] == 1.0 and tail["before_gold_overlap"] == 0.0
    assert tail["checkpoint"] == 0.5  # the long batch had one, the batch before it none
    assert tail["compaction"] == 0.5  # the same for the compaction
    assert res["all_batches"]["compaction"] == pytest.approx(2 / 7)  # the long batch: own of one, before of another
    assert res["all_batches"]["gold_overlap"] == 0.25
    assert res["tail_phases"]["silver_append"] == 2000.0
    assert res["all_phases"]["silver_append"] == pytest.approx(800.0)
    text = "\n".join(render(res))
    assert "| own batch overlapped a gold batch | 25% | 100% |" in text
    assert "| the service's compaction ran during either | 29% | 50% |" in text
    assert "| silver_append | 800 | 2,000 |" in text


def test_warm_up_events_and_unmatched_commits_are_left_out() -> None:
    res = attribute(COMMITS, BATCHES, PHASES, [], since=0.2)
    assert res["events"] == 30
    # A commit outside every medallion batch (e.g. the table's creation) matches no batch.
    assert attribute([Commit(100.0, np.full(3, 99.0))], BATCHES, {}, [], since=0.0) == {"events": 0}


def test_latencies_leave_out_rows_produced_before_since() -> None:
    assert latencies(COMMITS, since=0.5).tolist() == pytest.approx([1.4] * 10 + [3.4] * 10 + [1.9] * 10)
    assert COMMITS[0].latencies(since=0.5).size == 0
    assert latencies([], since=0.0).size == 0


def test_logs_are_read_across_rotation_and_cut_lines(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    line = {"query": "medallion", "batch_id": 1, "timestamp": "2026-11-28T12:00:00.000Z", "batch_duration_ms": 1500}
    (tmp_path / "progress.jsonl.1").write_text(json.dumps({**line, "batch_id": 0}) + "\n")
    log.write_text(json.dumps(line) + "\n" + '{"query": "medal')
    batches = read_batches(log)
    assert [(b.batch_id, b.seconds) for b in batches] == [(0, 1.5), (1, 1.5)]
    phases = tmp_path / "batch_phases.jsonl"
    records = [
        {"query": "medallion", "batch_id": 1, "phases_ms": {"x": 1.0}},
        {"query": "gold_fraud_rates", "batch_id": 1, "phases_ms": {"y": 2.0}},
        {"query": "medallion", "batch_id": 1, "phases_ms": {"x": 3.0}},  # a replayed batch: the last record wins
    ]
    phases.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert read_phases(phases) == {"medallion": {1: {"x": 3.0}}, "gold_fraud_rates": {1: {"y": 2.0}}}


def test_compaction_runs_are_grouped_from_their_table_lines(tmp_path: Path) -> None:
    log = tmp_path / "compaction.jsonl"
    lines = [
        {"at": 160.0, "seconds": 20.0, "table": "bronze", "files_removed": 900, "files_added": 1},
        {"at": 160.0, "seconds": 20.0, "table": "silver", "files_removed": 1800, "files_added": 2},
        {"at": 100.0, "seconds": 5.0, "table": "silver", "files_removed": 10, "files_added": 1},
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    runs = read_compactions(log)
    assert [(c.run.start, c.run.end, c.files) for c in runs] == [
        (100.0, 105.0, {"silver": (10, 1)}),
        (160.0, 180.0, {"bronze": (900, 1), "silver": (1800, 2)}),
    ]
    table = render_compactions(runs, start=40.0)
    assert table[-4:] == [
        "| started, min into the run | seconds | silver | bronze |",
        "| --- | --- | --- | --- |",
        "| 1.0 | 5.0 | 10 -> 1 | - |",
        "| 2.0 | 20.0 | 1,800 -> 2 | 900 -> 1 |",
    ]
    assert render_compactions([], start=0.0)[0].startswith("- The service's compaction did not run")


def test_checkpoint_times_are_the_checkpoint_files_mtimes_kept_after_a_cleanup(tmp_path: Path) -> None:
    log = tmp_path / "t" / "_delta_log"
    log.mkdir(parents=True)
    first = log / "00000000000000000100.checkpoint.parquet"
    first.write_bytes(b"")
    (log / "00000000000000000100.json").write_bytes(b"")
    os.utime(first, (42.0, 42.0))
    times = CheckpointTimes([tmp_path / "t", tmp_path / "missing"])
    assert times.read() == [42.0]

    first.unlink()  # what the service's log cleanup does to an old checkpoint
    second = log / "00000000000000000200.checkpoint.parquet"
    second.write_bytes(b"")
    os.utime(second, (50.0, 50.0))

    assert times.read() == [42.0, 50.0]
