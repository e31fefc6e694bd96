"""Task bodies of ``spark_streaming_orchestration`` (monitoring only; the jobs run under ``shoplake stream``).

Each check raises when it finds a problem so the task fails visibly; the report task runs whatever happened
upstream (trigger rule ``all_done``), re-runs the checks and writes the JSON report, then fails if the
platform is unhealthy - a report is produced on bad days too, which is when it is needed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shoplake.config import Settings


class UnhealthyError(RuntimeError):
    """A health check found problems; the message lists them."""


def check_streaming_config(settings: Settings) -> dict[str, Any]:
    from shoplake.pipeline.config import load_streaming_config

    cfg = load_streaming_config(settings)  # the settings already validated the file
    return {
        "path": str(settings.streaming_config),
        "stages": list(cfg.continuous_stages),
        "topics": list(cfg.topics),
        "progress_log": str(cfg.metrics_path),
    }


def check_delta_tables(settings: Settings, now: datetime | None = None) -> list[dict[str, Any]]:
    from shoplake.monitoring.delta_health import check_tables
    from shoplake.pipeline.config import load_streaming_config

    cfg = load_streaming_config(settings)
    tables = check_tables(
        cfg, now=now or datetime.now(UTC), max_age=timedelta(hours=settings.health.max_table_age_hours)
    )
    bad = [f"{t.name}: {t.status}: {t.detail}" for t in tables if not t.healthy]
    if bad:
        raise UnhealthyError("unhealthy Delta tables:\n  " + "\n  ".join(bad))
    return [t.as_dict() for t in tables]


def monitor_streaming_metrics(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    from shoplake.monitoring.streaming_metrics import read_metrics
    from shoplake.pipeline.config import load_streaming_config

    cfg = load_streaming_config(settings)
    metrics = read_metrics(
        cfg.metrics_path,
        cfg.continuous_stages,
        now=now or datetime.now(UTC),
        max_age=timedelta(hours=settings.health.max_table_age_hours),
    )
    if not metrics.healthy:
        raise UnhealthyError("streaming metrics:\n  " + "\n  ".join(metrics.problems))
    return metrics.as_dict()


def generate_health_report(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """The same report as ``shoplake report`` (JSON + HTML); fails the task on status FAIL, not on WARN."""
    from shoplake.monitoring import report as health

    report = health.run(settings, now or datetime.now(UTC))
    summary = {
        "path": str(report.path),
        "status": report.status,
        "healthy": report.healthy,
        "problems": report.problems,
        "warnings": report.content["warnings"],
    }
    if not report.healthy:
        raise UnhealthyError(f"platform unhealthy (report {report.path}):\n  " + "\n  ".join(report.problems))
    return summary
