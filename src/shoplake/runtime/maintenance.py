"""Delta table maintenance: compaction (OPTIMIZE), VACUUM with a retention that is safe for streaming, log cleanup.

Micro-batches write many small files; OPTIMIZE compacts them so readers (silver's stream, the ML extract,
dbt's loads) open fewer files. VACUUM deletes files no longer referenced, but a streaming reader or a
time-travel query may still need recent ones, so the retention never goes below Delta's 7-day default
(Delta's own ``retentionDurationCheck`` stays on and refuses anything shorter as well). The Delta logs are
cleaned to what their readers still need (:mod:`shoplake.lakehouse.log_cleanup`); the continuous service does
that on its own every few minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from shoplake.lakehouse import log_cleanup
from shoplake.pipeline.config import StreamingConfig

MIN_RETENTION_HOURS: Final = 168


@dataclass(frozen=True)
class MaintenanceResult:
    table: str
    files_before: int
    files_after: int
    vacuumed: bool
    log_files_deleted: int


def check_retention(retention_hours: int) -> None:
    """Refuse a VACUUM retention that could delete files a streaming reader still needs."""
    if retention_hours < MIN_RETENTION_HOURS:
        raise ValueError(
            f"retention_hours={retention_hours} is unsafe: streaming readers may still need those files "
            f"(minimum {MIN_RETENTION_HOURS} h)"
        )


def tables(cfg: StreamingConfig) -> dict[str, Path]:
    return {
        "bronze": cfg.bronze_path,
        "silver": cfg.silver_path,
        "quarantine": cfg.quarantine_path,
        "gold_hourly_sales": cfg.gold_hourly_sales_path,
        "gold_customer_windows": cfg.gold_customer_windows_path,
        "gold_fraud_rates": cfg.gold_fraud_rates_path,
    }


def clean_logs(cfg: StreamingConfig) -> list[log_cleanup.CleanupResult]:
    """Clean every streaming table's Delta log, keeping what the streaming queries still need."""
    return log_cleanup.clean_tables(
        {**tables(cfg), "gold_fraud_alerts": cfg.gold_fraud_alerts_path},
        checkpoint_root=cfg.checkpoint_root,
        retention_s=cfg.log_retention_s,
    )


def _file_count(spark: SparkSession, path: Path) -> int:
    detail = DeltaTable.forPath(spark, str(path)).detail().select("numFiles").first()
    return int(detail[0]) if detail is not None else 0


def maintain(
    spark: SparkSession, cfg: StreamingConfig, *, retention_hours: int = MIN_RETENTION_HOURS, vacuum: bool = True
) -> list[MaintenanceResult]:
    """OPTIMIZE every existing table, then VACUUM it, then clean the logs; tables not created yet are skipped."""
    check_retention(retention_hours)
    compacted = []
    for name, path in tables(cfg).items():
        if not DeltaTable.isDeltaTable(spark, str(path)):
            continue
        before = _file_count(spark, path)
        table = DeltaTable.forPath(spark, str(path))
        table.optimize().executeCompaction()
        if vacuum:
            table.vacuum(retention_hours)
        compacted.append((name, before, _file_count(spark, path)))
    deleted = {r.table: r.deleted for r in clean_logs(cfg)}
    return [MaintenanceResult(name, before, after, vacuum, deleted.get(name, 0)) for name, before, after in compacted]
