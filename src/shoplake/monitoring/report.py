"""The streaming health report: Delta table health + streaming metrics -> one JSON document on disk.

The verdict is computed from the checks (healthy only when every required table is OK and every expected
query reported recent progress) and the report is written atomically, as a timestamped file plus
``latest.json``, so dashboards and the demo can always read the most recent complete one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shoplake.config import Settings
from shoplake.monitoring.delta_health import check_tables
from shoplake.monitoring.streaming_metrics import read_metrics
from shoplake.streaming.config import load_streaming_config


@dataclass(frozen=True)
class HealthReport:
    path: Path
    content: dict[str, Any]

    @property
    def healthy(self) -> bool:
        return bool(self.content["healthy"])

    @property
    def problems(self) -> list[str]:
        return list(self.content["problems"])


def reports_dir(settings: Settings) -> Path:
    return settings.home / "reports" / "streaming-health"


def build_report(settings: Settings, now: datetime) -> dict[str, Any]:
    """Run every check at instant ``now`` and assemble the report (no file written)."""
    cfg = load_streaming_config(settings)
    max_age = timedelta(hours=settings.health_max_table_age_hours)
    tables = check_tables(cfg, now=now, max_age=max_age)
    metrics = read_metrics(cfg.metrics_path, cfg.continuous_stages, now=now, max_age=max_age)
    problems = [f"table {t.name}: {t.status}: {t.detail}" for t in tables if not t.healthy]
    problems += list(metrics.problems)
    return {
        "generated_at": now.isoformat(),
        "healthy": not problems,
        "problems": problems,
        "config": str(settings.streaming_config),
        "max_age_hours": settings.health_max_table_age_hours,
        "tables": [t.as_dict() for t in tables],
        "streaming": metrics.as_dict(),
    }


def write_report(settings: Settings, content: dict[str, Any]) -> HealthReport:
    folder = reports_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = str(content["generated_at"]).replace(":", "").replace("+0000", "Z")
    path = folder / f"health-{stamp}.json"
    text = json.dumps(content, indent=2, sort_keys=True)
    for target in (path, folder / "latest.json"):
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return HealthReport(path, content)
