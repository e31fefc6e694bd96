"""The platform health report: every layer's facts, judged against the thresholds, as JSON and HTML.

``build_report`` gathers Delta table health (version, age, rows, files, small files, schema), streaming
progress (rows/s, batch duration), Kafka lag per partition, quarantine reasons, warehouse and
marts freshness, the production model, the latest data-quality run and the lineage graph; then
:mod:`.thresholds` turns them into findings and an overall status (OK / WARN / FAIL). Lag is compared
with the previous report's (``latest.json``): lag that grows while no offset is committed is a stuck
stream. ``write_report`` writes a timestamped JSON, ``latest.json`` and ``latest.html`` atomically, so
dashboards, the demo and the streaming DAG always read a complete report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shoplake.config import Settings
from shoplake.files import write_text
from shoplake.monitoring import thresholds as th
from shoplake.monitoring.delta_health import check_tables
from shoplake.monitoring.streaming_metrics import read_metrics
from shoplake.pipeline.config import StreamingConfig, load_streaming_config


@dataclass(frozen=True)
class HealthReport:
    path: Path
    content: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.content["status"])

    @property
    def healthy(self) -> bool:
        return bool(self.content["healthy"])

    @property
    def problems(self) -> list[str]:
        return list(self.content["problems"])


def reports_dir(settings: Settings) -> Path:
    return settings.home / "reports" / "streaming-health"


def previous_report(settings: Settings) -> dict[str, Any] | None:
    path = reports_dir(settings) / "latest.json"
    return dict(json.loads(path.read_text())) if path.is_file() else None


def build_report(
    settings: Settings,
    now: datetime,
    cfg: StreamingConfig | None = None,
    *,
    marts_schema: str | None = None,
    model_name: str | None = None,
) -> dict[str, Any]:
    """Run every check at instant ``now`` and assemble the report (no file written).

    ``cfg``/``marts_schema``/``model_name`` default to the platform's; tests point them at their own world.
    """
    from shoplake import lineage
    from shoplake.monitoring import kafka_lag, model_health, quarantine, warehouse_health
    from shoplake.quality import audit

    cfg = cfg or load_streaming_config(settings)
    limits = th.Thresholds.from_settings(settings)
    tables = [
        t.as_dict()
        for t in check_tables(cfg, now=now, max_age=limits.max_table_age, small_file_bytes=limits.small_file_bytes)
    ]
    metrics = read_metrics(cfg.metrics_path, cfg.continuous_stages, now=now, max_age=limits.max_table_age)
    lag = kafka_lag.measure(cfg).as_dict()
    previous = previous_report(settings)
    quarantined = quarantine.reasons(cfg.quarantine_path)
    bronze_rows = next((int(t["rows"] or 0) for t in tables if t["name"] == "bronze"), 0)
    warehouse = warehouse_health.measure(
        cfg.postgres_dsn, cfg.warehouse_schema, cfg.warehouse_table, now, marts_schema or warehouse_health.MARTS_SCHEMA
    )
    model = model_health.production_model(settings, model_name)
    quality = audit.latest(settings)
    findings = [
        *th.table_findings(tables, limits),
        *th.streaming_findings(metrics.problems),
        *th.lag_findings(lag, (previous or {}).get("kafka_lag"), limits),
        *th.quarantine_findings(int(quarantined["rows"]), bronze_rows, limits),
        *th.warehouse_findings(warehouse, limits),
        *th.model_findings(model),
        *th.quality_findings(quality),
    ]
    status = th.worst(f.level for f in findings)
    return {
        "generated_at": now.isoformat(),
        "status": status,
        "healthy": status != th.FAIL,
        "problems": [f"{f.component}: {f.message}" for f in findings if f.level == th.FAIL],
        "warnings": [f"{f.component}: {f.message}" for f in findings if f.level == th.WARN],
        "findings": [vars(f) for f in findings],
        "thresholds": limits.as_dict(),
        "config": str(settings.streaming_config),
        "max_age_hours": settings.health.max_table_age_hours,
        "tables": tables,
        "streaming": metrics.as_dict(),
        "kafka_lag": lag,
        "quarantine": quarantined,
        "warehouse": warehouse,
        "model": model,
        "quality": quality,
        "lineage": lineage.graph(lineage.read_events(settings)),
    }


def write_report(settings: Settings, content: dict[str, Any]) -> HealthReport:
    """Write ``health-<stamp>.json``, ``latest.json`` and ``latest.html`` (each atomically)."""
    from shoplake.monitoring.html_report import render

    folder = reports_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = str(content["generated_at"]).replace(":", "").replace("+0000", "Z")
    path = folder / f"health-{stamp}.json"
    text = json.dumps(content, indent=2, sort_keys=True, default=str)
    history = _lag_history(folder)
    for target, body in (
        (path, text),
        (folder / "latest.json", text),
        (folder / "latest.html", render(content, history)),
    ):
        write_text(target, body)
    return HealthReport(path, content)


def run(settings: Settings, now: datetime, cfg: StreamingConfig | None = None) -> HealthReport:
    """Build and write the report: what ``shoplake report`` and the streaming DAG's last task call."""
    return write_report(settings, build_report(settings, now, cfg))


def _lag_history(folder: Path, limit: int = 48) -> list[tuple[str, int]]:
    """(generated_at, total lag) of the most recent reports, for the lag-over-time chart."""
    out: list[tuple[str, int]] = []
    for file in sorted(folder.glob("health-*.json"))[-limit:]:
        try:
            doc = json.loads(file.read_text())
            total = (doc.get("kafka_lag") or {}).get("total_lag")
        except (OSError, ValueError):
            continue
        if total is not None:
            out.append((str(doc["generated_at"]), int(total)))
    return out
