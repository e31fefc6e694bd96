"""The health report's verdict rules (pure): each observation -> OK / WARN / FAIL against the settings."""

from __future__ import annotations

from typing import Any

import pytest

from shoplake.config import Settings
from shoplake.monitoring import thresholds as th
from shoplake.monitoring.html_report import render

LIMITS = th.Thresholds.from_settings(
    Settings.from_env(
        {"HEALTH_MAX_KAFKA_LAG": "100", "HEALTH_MAX_SMALL_FILE_RATIO": "0.5", "HEALTH_SMALL_FILE_MB": "1"}
    )
)


def _lag(total: int, committed: int, error: str | None = None) -> dict[str, Any]:
    return {"total_lag": total, "committed_total": committed, "error": error}


def _table(name: str = "silver", healthy: bool = True, files: int = 20, small: int = 0) -> dict[str, Any]:
    status = "ok" if healthy else "missing"
    return {"name": name, "healthy": healthy, "status": status, "detail": "d", "files": files, "small_files": small}


@pytest.mark.unit
def test_thresholds_come_from_the_settings() -> None:
    assert LIMITS.max_kafka_lag == 100 and LIMITS.max_small_file_ratio == 0.5
    assert LIMITS.small_file_bytes == 1024 * 1024


@pytest.mark.unit
def test_worst_level_wins() -> None:
    assert th.worst([]) == th.OK
    assert th.worst([th.OK, th.WARN]) == th.WARN
    assert th.worst([th.WARN, th.FAIL, th.OK]) == th.FAIL


@pytest.mark.unit
def test_missing_or_stale_table_fails_and_small_files_warn() -> None:
    assert [f.level for f in th.table_findings([_table(healthy=False)], LIMITS)] == [th.FAIL]
    assert [f.level for f in th.table_findings([_table(files=20, small=11)], LIMITS)] == [th.WARN]
    assert th.table_findings([_table(files=20, small=10)], LIMITS) == []
    assert th.table_findings([_table(files=3, small=3)], LIMITS) == []  # too few files to judge


@pytest.mark.unit
def test_stuck_stream_fails_falling_behind_warns() -> None:
    assert [f.level for f in th.lag_findings(_lag(50, 1000), _lag(10, 1000), LIMITS)] == [th.FAIL]
    assert [f.level for f in th.lag_findings(_lag(50, 1200), _lag(10, 1000), LIMITS)] == [th.WARN]
    assert th.lag_findings(_lag(0, 1200), _lag(10, 1000), LIMITS) == []
    assert th.lag_findings(_lag(50, 1000), None, LIMITS) == []  # one report cannot show growth
    assert [f.level for f in th.lag_findings(_lag(101, 0), None, LIMITS)] == [th.WARN]
    assert [f.level for f in th.lag_findings(_lag(0, 0, "Kafka unreachable"), None, LIMITS)] == [th.FAIL]


@pytest.mark.unit
def test_quarantine_share_warns_above_its_limit() -> None:
    assert th.quarantine_findings(6, 100, LIMITS)[0].level == th.WARN
    assert th.quarantine_findings(5, 100, LIMITS) == []
    assert th.quarantine_findings(0, 0, LIMITS) == []


@pytest.mark.unit
def test_warehouse_freshness() -> None:
    hour = 3600.0
    fresh = {"raw_table": "raw.t", "marts_schema": "marts", "raw_age_seconds": hour, "marts_age_seconds": hour}
    assert th.warehouse_findings(fresh, LIMITS) == []
    stale_raw = {**fresh, "raw_age_seconds": 25 * hour}
    assert [f.level for f in th.warehouse_findings(stale_raw, LIMITS)] == [th.FAIL]
    assert [f.level for f in th.warehouse_findings({**fresh, "raw_age_seconds": None}, LIMITS)] == [th.FAIL]
    assert [f.level for f in th.warehouse_findings({**fresh, "marts_age_seconds": None}, LIMITS)] == [th.WARN]
    assert [f.level for f in th.warehouse_findings({"error": "down"}, LIMITS)] == [th.FAIL]


@pytest.mark.unit
def test_failed_quality_check_fails_and_no_run_warns() -> None:
    passed = {"checks": [{"name": "unique_transaction_id", "passed": True, "detail": ""}]}
    failed = {"checks": [{"name": "unique_transaction_id", "passed": False, "detail": "3 duplicates"}]}
    assert th.quality_findings(passed) == []
    assert [f.level for f in th.quality_findings(failed)] == [th.FAIL]
    assert [f.level for f in th.quality_findings(None)] == [th.WARN]


@pytest.mark.unit
def test_model_unreachable_warns_not_deployed_is_fine() -> None:
    assert th.model_findings({"name": "m", "deployed": False}) == []
    assert [f.level for f in th.model_findings({"name": "m", "error": "down"})] == [th.WARN]


@pytest.mark.unit
def test_html_is_self_contained_and_shows_status_lineage_and_charts() -> None:
    report: dict[str, Any] = {
        "status": "FAIL",
        "generated_at": "2026-11-27T12:00:00+00:00",
        "findings": [{"level": "FAIL", "component": "table silver", "message": "missing <dir>"}],
        "tables": [
            {
                "name": "bronze",
                "status": "ok",
                "version": 3,
                "rows": 10,
                "files": 2,
                "small_files": 2,
                "age_seconds": 5.0,
                "columns": ["key: binary"],
            },
        ],
        "streaming": {"queries": {}},
        "kafka_lag": {"partitions": {"t/0": {"committed": 5, "end": 9, "lag": 4}}, "total_lag": 4},
        "quarantine": {"rows": 1, "top_reasons": [{"reason": "undecodable", "rows": 1}]},
        "warehouse": {"raw_rows": 9},
        "model": {"name": "m", "deployed": False},
        "quality": None,
        "thresholds": LIMITS.as_dict(),
        "lineage": {
            "jobs": {"stream": {"state": "COMPLETE", "at": "x"}},
            "edges": [
                {"from": "kafka://h:1/topic", "job": "stream", "to": "file//d/bronze/transactions"},
                {"from": "postgres://h:2/w.raw.transactions", "job": "dbt", "to": "postgres://h:2/w.marts.fct_x"},
            ],
        },
    }
    html = render(report, [("2026-11-27T11:00:00+00:00", 7)])
    assert "missing &lt;dir&gt;" in html  # escaped
    assert html.count("data:image/png;base64,") == 2  # table chart + lag chart
    assert "<svg" in html and "bronze/transactions" in html and "marts.fct_x" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
