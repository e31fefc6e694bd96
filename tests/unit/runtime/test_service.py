"""Pure parts of the streaming service: reading the progress log the monitoring DAG relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoplake.runtime.service import last_progress

pytestmark = pytest.mark.unit


def test_last_progress_keeps_the_newest_line_per_query(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    lines = [
        {"query": "bronze", "batch_id": 1, "input_rows": 10},
        {"query": "silver", "batch_id": 1, "input_rows": 9},
        {"query": "bronze", "batch_id": 2, "input_rows": 5},
    ]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert last_progress(log) == {"bronze": lines[2], "silver": lines[1]}


def test_a_cut_first_line_of_the_tail_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    log.write_text(json.dumps({"query": "old", "pad": "x" * 500}) + "\n" + json.dumps({"query": "new"}) + "\n")
    assert last_progress(log, tail_bytes=40) == {"new": {"query": "new"}}


def test_missing_log_means_no_progress_yet(tmp_path: Path) -> None:
    assert last_progress(tmp_path / "absent.jsonl") == {}
