"""Run the silver audit, store its results, and guard publishing with it.

Facts come from the real layers: silver's columns (delta-rs + Arrow, no JVM), row counts from the Delta
logs, consumed Kafka offsets from the medallion checkpoint, ``raw.<table>``'s count from PostgreSQL, the
allowed codes from :mod:`shoplake.contracts.reference` (which generates the seeds the marts join to).
Results go to PostgreSQL ``monitoring.dq_results`` (one row per check and run, for history) and to
``$SHOPLAKE_HOME/reports/data-quality/latest.json`` (what the health report shows).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from shoplake.config import Settings
from shoplake.contracts import reference
from shoplake.files import write_text
from shoplake.pipeline.config import StreamingConfig
from shoplake.quality import checks
from shoplake.quality.checks import Check

RESULTS_SCHEMA: Final = "monitoring"
RESULTS_TABLE: Final = "dq_results"
# silver column -> the reference codes it must hold (dbt's seeds are generated from the same module)
ALLOWED_CODES: Final = {
    "merchant_category": frozenset(reference.CATEGORY_CODES),
    "currency": frozenset(reference.CURRENCY_CODES),
    "payment_method": frozenset(reference.PAYMENT_METHOD_CODES),
    "merchant_country": frozenset(reference.COUNTRY_CODES),
    "ip_country": frozenset(reference.COUNTRY_CODES),
}
RANGES: Final[dict[str, tuple[float | None, float | None]]] = {
    "amount_cents": (1, None),  # a payment attempt moves money
    "event_hour": (0, 23),
    "kafka_partition": (0, None),
    "kafka_offset": (0, None),
}
OPTIONAL_COLUMNS: Final = frozenset({"fraud_pattern"})  # null for legitimate transactions


class DataQualityError(RuntimeError):
    """The audit failed: publishing is blocked. The message lists the failed checks."""


@dataclass(frozen=True)
class QualityRun:
    run_id: str
    checked_at: str
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "checked_at": self.checked_at,
            "passed": self.passed,
            "checks": [c.as_dict() for c in self.checks],
        }


def results_dir(settings: Settings) -> Path:
    return settings.home / "reports" / "data-quality"


def run_audit(settings: Settings, cfg: StreamingConfig, now: datetime) -> QualityRun:
    """Every expectation on silver and the layer volumes; raises only when silver itself is absent."""
    from deltalake import DeltaTable

    from shoplake.monitoring import kafka_lag
    from shoplake.pipeline.silver.transforms import SILVER_COLUMNS

    if not (cfg.silver_path / "_delta_log").is_dir():
        raise DataQualityError(f"silver table missing at {cfg.silver_path}: nothing to audit")
    silver = DeltaTable(str(cfg.silver_path)).to_pyarrow_dataset().to_table(columns=list(SILVER_COLUMNS))
    required = [c for c in SILVER_COLUMNS if c not in OPTIONAL_COLUMNS]
    bronze_rows = _rows(cfg.bronze_path)
    quarantined = _rows(cfg.quarantine_path)
    lag = kafka_lag.measure(cfg)
    tolerance = settings.health.dq_volume_tolerance
    found = (
        checks.not_null(silver, required),
        checks.in_range(silver, RANGES),
        checks.unique(silver, "transaction_id"),
        checks.references(silver, ALLOWED_CODES),
        checks.volume_bronze_vs_kafka(bronze_rows, None if lag.error else lag.consumed, tolerance),
        checks.volume_silver_vs_bronze(silver.num_rows, bronze_rows, quarantined),
        checks.volume_raw_vs_silver(_raw_rows(cfg), silver.num_rows, tolerance),
    )
    return QualityRun(uuid.uuid4().hex, now.isoformat(), found)


def store(settings: Settings, run: QualityRun) -> Path:
    """Append the run to ``monitoring.dq_results`` (when PostgreSQL is reachable) and write the JSON files."""
    import psycopg

    folder = results_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(run.as_dict(), indent=2)
    path = folder / f"dq-{run.checked_at.replace(':', '')}.json"
    for target in (path, folder / "latest.json"):
        write_text(target, text)
    # The JSON is the record of last resort; raw's own check already failed on a PostgreSQL outage.
    with contextlib.suppress(psycopg.OperationalError):
        _store_rows(settings.postgres.dsn(), run)
    return path


def latest(settings: Settings) -> dict[str, Any] | None:
    path = results_dir(settings) / "latest.json"
    return dict(json.loads(path.read_text())) if path.is_file() else None


def publish_gate(settings: Settings, cfg: StreamingConfig, now: datetime, caller: str = "shoplake dq") -> QualityRun:
    """Audit + store; on failure alert and raise :class:`DataQualityError` so the publishing step stops."""
    from shoplake.monitoring.notify import Alert, notify

    def blocked(summary: str) -> None:
        notify(settings, Alert(kind="data quality failed", severity="error", dag_id=caller, error=summary))

    try:
        run = run_audit(settings, cfg, now)
    except DataQualityError as exc:  # nothing to audit (silver missing): publishing is blocked all the same
        blocked(str(exc))
        raise
    path = store(settings, run)
    if not run.passed:
        summary = "; ".join(f"{c.name}: {c.detail or c.observed}" for c in run.failed)
        blocked(summary)
        raise DataQualityError(f"data-quality audit failed, publishing blocked (results {path}): {summary}")
    return run


def _rows(path: Path) -> int:
    if not (path / "_delta_log").is_dir():
        return 0
    import pyarrow as pa
    from deltalake import DeltaTable

    actions = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).to_pydict()
    return sum(int(n) for n in actions.get("num_records", []) if n is not None)


def _raw_rows(cfg: StreamingConfig) -> int | None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(cfg.postgres_dsn, connect_timeout=5) as conn:
            ident = sql.Identifier(cfg.warehouse_schema, cfg.warehouse_table)
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
    except psycopg.Error:
        return None
    return int(row[0]) if row else None


def _store_rows(dsn: str, run: QualityRun) -> None:
    import psycopg
    from psycopg import sql

    table = sql.Identifier(RESULTS_SCHEMA, RESULTS_TABLE)
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(RESULTS_SCHEMA)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (run_id text, checked_at timestamptz, check_name text, passed boolean,"
                " observed text, expected text, detail text, PRIMARY KEY (run_id, check_name))"
            ).format(table)
        )
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING").format(table),
                [(run.run_id, run.checked_at, c.name, c.passed, c.observed, c.expected, c.detail) for c in run.checks],
            )
