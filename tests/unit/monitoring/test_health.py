"""Streaming health checks against real (small, local) Delta tables and progress files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from shoplake.config import Settings
from shoplake.monitoring import delta_health
from shoplake.monitoring.streaming_metrics import read_metrics
from shoplake.monitoring.thresholds import Thresholds, table_findings
from shoplake.pipeline.config import load_streaming_config

DAY = timedelta(days=1)


def _table(path: Path, rows: int = 3) -> None:
    write_deltalake(str(path), pa.table({"id": list(range(rows))}))


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.unit
def test_healthy_table_reports_version_files_and_rows(tmp_path: Path) -> None:
    _table(tmp_path / "t", rows=5)
    h = delta_health.check_table("t", tmp_path / "t", required=True, now=_now(), max_age=DAY)
    assert (h.status, h.healthy, h.version, h.files, h.rows) == ("ok", True, 0, 1, 5)


@pytest.mark.unit
def test_missing_required_table_is_unhealthy_but_absent_optional_is_not(tmp_path: Path) -> None:
    required = delta_health.check_table("t", tmp_path / "nope", required=True, now=_now(), max_age=DAY)
    optional = delta_health.check_table("q", tmp_path / "nope", required=False, now=_now(), max_age=DAY)
    assert (required.status, required.healthy) == ("missing", False)
    assert (optional.status, optional.healthy) == ("absent", True)


@pytest.mark.unit
def test_deleted_data_file_means_corrupt(tmp_path: Path) -> None:
    _table(tmp_path / "t")
    next((tmp_path / "t").glob("*.parquet")).unlink()
    h = delta_health.check_table("t", tmp_path / "t", required=True, now=_now(), max_age=DAY)
    assert h.status == "corrupt" and "missing" in h.detail


@pytest.mark.unit
def test_unreadable_log_means_corrupt(tmp_path: Path) -> None:
    _table(tmp_path / "t")
    next((tmp_path / "t" / "_delta_log").glob("*.json")).write_text("{not json")
    h = delta_health.check_table("t", tmp_path / "t", required=True, now=_now(), max_age=DAY)
    assert h.status == "corrupt"


@pytest.mark.unit
def test_old_last_commit_means_stale(tmp_path: Path) -> None:
    _table(tmp_path / "t")
    h = delta_health.check_table("t", tmp_path / "t", required=True, now=_now() + 2 * DAY, max_age=DAY)
    assert h.status == "stale" and not h.healthy


def _progress(path: Path, queries: list[str], at: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for i, q in enumerate(queries):
            rec = {
                "query": q,
                "batch_id": i,
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                "input_rows": 10,
                "processed_rows_per_second": 5.0,
                "batch_duration_ms": 200,
            }
            fh.write(json.dumps(rec) + "\n")


@pytest.mark.unit
def test_metrics_need_recent_progress_from_every_stage(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    stages = ("bronze", "silver")
    assert not read_metrics(log, stages, now=_now(), max_age=DAY).healthy  # no file yet
    _progress(log, ["bronze"], _now())
    missing = read_metrics(log, stages, now=_now(), max_age=DAY)
    assert missing.problems == ("stage silver: no progress recorded",)
    _progress(log, ["silver"], _now() - 3 * DAY)
    old = read_metrics(log, stages, now=_now(), max_age=DAY)
    assert len(old.problems) == 1 and "silver" in old.problems[0]
    _progress(log, ["silver"], _now())
    fresh = read_metrics(log, stages, now=_now(), max_age=DAY)
    assert fresh.healthy and fresh.queries["bronze"].input_rows == 10


@pytest.mark.unit
def test_a_stage_is_its_one_query_not_the_per_table_queries_of_older_versions(tmp_path: Path) -> None:
    log = tmp_path / "progress.jsonl"
    _progress(log, ["gold_hourly_sales"], _now())
    assert read_metrics(log, ("gold",), now=_now(), max_age=DAY).problems == ("stage gold: no progress recorded",)
    _progress(log, ["gold"], _now() - 3 * DAY)
    problems = read_metrics(log, ("gold",), now=_now(), max_age=DAY).problems
    assert len(problems) == 1 and problems[0].startswith("query gold: last batch")
    _progress(log, ["gold"], _now())
    assert read_metrics(log, ("gold",), now=_now(), max_age=DAY).healthy


@pytest.mark.unit
def test_table_verdict_follows_the_checks(tmp_path: Path) -> None:
    """Table checks -> findings: healthy tables give none, a lost data file FAILs (services: integration tests)."""
    settings = Settings.from_env({"SHOPLAKE_HOME": str(tmp_path / "home"), "DELTA_BASE_PATH": str(tmp_path / "d")})
    cfg = load_streaming_config(settings)
    for path, required in delta_health.monitored_tables(cfg).values():
        if required:
            _table(path)
    limits = Thresholds.from_settings(settings)

    def findings() -> list[str]:
        tables = delta_health.check_tables(
            cfg, now=_now(), max_age=limits.max_table_age, small_file_bytes=limits.small_file_bytes
        )
        return [f"{f.level} {f.component}" for f in table_findings([t.as_dict() for t in tables], limits)]

    assert findings() == []
    silver = delta_health.check_table(
        "s", cfg.silver_path, required=True, now=_now(), max_age=DAY, small_file_bytes=1 << 20
    )
    assert silver.small_files == silver.files == 1 and silver.columns == ("id: long",)
    next(cfg.silver_path.glob("*.parquet")).unlink()
    assert findings() == ["FAIL table silver"]
