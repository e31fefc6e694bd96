"""The health report's verdict: every observation becomes OK, WARN or FAIL against limits from the settings.

Pure functions over plain values (no I/O), so the rules are unit-tested exhaustively and the report module
only gathers facts. FAIL means "data is missing, wrong or not moving" (the streaming DAG's report task
fails); WARN means "needs attention soon" (small files, growing lag, many quarantined rows, stale marts).
No limit is written here: each comes from :class:`Thresholds`, built from :class:`~shoplake.config.Settings`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Final

from shoplake.config import Settings

OK: Final = "OK"
WARN: Final = "WARN"
FAIL: Final = "FAIL"
_RANK: Final = {OK: 0, WARN: 1, FAIL: 2}
MIN_FILES_FOR_RATIO: Final = 10  # a table of a few files is "small" by nature; the ratio means nothing there


@dataclass(frozen=True)
class Finding:
    level: str
    component: str
    message: str


@dataclass(frozen=True)
class Thresholds:
    max_table_age_hours: float
    small_file_bytes: int
    max_small_file_ratio: float
    max_kafka_lag: int
    max_quarantine_ratio: float
    max_warehouse_age_hours: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            max_table_age_hours=settings.health.max_table_age_hours,
            small_file_bytes=int(settings.health.small_file_mb * 1024 * 1024),
            max_small_file_ratio=settings.health.max_small_file_ratio,
            max_kafka_lag=settings.health.max_kafka_lag,
            max_quarantine_ratio=settings.health.max_quarantine_ratio,
            max_warehouse_age_hours=settings.health.max_warehouse_age_hours,
        )

    @property
    def max_table_age(self) -> timedelta:
        return timedelta(hours=self.max_table_age_hours)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def worst(levels: Iterable[str]) -> str:
    return max(levels, key=_RANK.__getitem__, default=OK)


def table_findings(tables: Sequence[Mapping[str, Any]], t: Thresholds) -> list[Finding]:
    """Unhealthy tables (missing, corrupt, stale) FAIL; too many small files WARN."""
    out: list[Finding] = []
    for table in tables:
        name = f"table {table['name']}"
        if not table["healthy"]:
            out.append(Finding(FAIL, name, f"{table['status']}: {table['detail']}"))
            continue
        files, small = table.get("files") or 0, table.get("small_files") or 0
        if files >= MIN_FILES_FOR_RATIO and small / files > t.max_small_file_ratio:
            out.append(
                Finding(WARN, name, f"{small} of {files} files are small (> {t.max_small_file_ratio:.0%}): compact it")
            )
    return out


def lag_findings(current: Mapping[str, Any], previous: Mapping[str, Any] | None, t: Thresholds) -> list[Finding]:
    """Kafka lag of the bronze query: unreachable broker FAIL; stuck (lag grew, offsets did not move) FAIL.

    ``current``/``previous`` are :meth:`KafkaLag.as_dict` documents of this and the last report. A lag that
    grows while the committed offsets advance is a stream falling behind (WARN), not a stuck one.
    """
    if current.get("error"):
        return [Finding(FAIL, "kafka lag", str(current["error"]))]
    lag, committed = int(current["total_lag"]), int(current["committed_total"])
    out: list[Finding] = []
    if previous and not previous.get("error") and previous.get("total_lag") is not None:
        before, moved = int(previous["total_lag"]), committed > int(previous["committed_total"])
        if lag > before and not moved:
            out.append(
                Finding(FAIL, "kafka lag", f"stream stuck: lag grew {before} -> {lag} with no new committed offsets")
            )
        elif lag > before:
            out.append(Finding(WARN, "kafka lag", f"stream falling behind: lag grew {before} -> {lag}"))
    if lag > t.max_kafka_lag:
        out.append(Finding(WARN, "kafka lag", f"{lag} records behind the topic (limit {t.max_kafka_lag})"))
    return out


def quarantine_findings(quarantined: int, bronze_rows: int, t: Thresholds) -> list[Finding]:
    if bronze_rows and quarantined / bronze_rows > t.max_quarantine_ratio:
        share = quarantined / bronze_rows
        return [Finding(WARN, "quarantine", f"{share:.1%} of bronze rows quarantined (> {t.max_quarantine_ratio:.0%})")]
    return []


def warehouse_findings(warehouse: Mapping[str, Any], t: Thresholds) -> list[Finding]:
    """raw.* unreachable, empty or older than the bound FAIL (dbt has nothing fresh); stale/absent marts WARN."""
    if warehouse.get("error"):
        return [Finding(FAIL, "warehouse", str(warehouse["error"]))]
    limit = t.max_warehouse_age_hours * 3600
    raw_age = warehouse.get("raw_age_seconds")
    out: list[Finding] = []
    if raw_age is None:
        out.append(Finding(FAIL, "warehouse", f"{warehouse['raw_table']} has no rows"))
    elif raw_age > limit:
        out.append(Finding(FAIL, "warehouse", f"{warehouse['raw_table']} last loaded {raw_age / 3600:.1f} h ago"))
    marts_age = warehouse.get("marts_age_seconds")
    if marts_age is None:
        out.append(Finding(WARN, "marts", f"marts not built yet ({warehouse['marts_schema']} has no built_at)"))
    elif marts_age > limit:
        out.append(Finding(WARN, "marts", f"marts last built {marts_age / 3600:.1f} h ago"))
    return out


def model_findings(model: Mapping[str, Any]) -> list[Finding]:
    """MLflow unreachable WARN (scoring keeps its loaded model); no production model yet is informational."""
    if model.get("error"):
        return [Finding(WARN, "model", str(model["error"]))]
    return []


def quality_findings(quality: Mapping[str, Any] | None) -> list[Finding]:
    """The latest data-quality run: any failed check FAILs the report (it also blocked publishing)."""
    if not quality:
        return [Finding(WARN, "data quality", "no data-quality run recorded yet (shoplake dq)")]
    return [Finding(FAIL, "data quality", f"{c['name']}: {c['detail']}") for c in quality["checks"] if not c["passed"]]


def streaming_findings(problems: Sequence[str]) -> list[Finding]:
    """Stages without recent progress (from :mod:`.streaming_metrics`) FAIL: the pipeline is not moving."""
    return [Finding(FAIL, "streaming", p) for p in problems]
