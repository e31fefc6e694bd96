"""Is each Delta table of the streaming pipeline present, readable, complete and recently written?

A table is *missing* when it has no ``_delta_log``; *corrupt* when delta-rs cannot load its log or a data file
its latest snapshot references is gone from disk (a half-deleted table reads as empty in some engines, which
would hide data loss); *stale* when its last commit is older than ``HEALTH_MAX_TABLE_AGE_HOURS``. delta-rs
reads only the log and deletion vectors (no JVM), so the check takes well under a second per table.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from shoplake.pipeline.config import StreamingConfig

if TYPE_CHECKING:
    from deltalake import DeltaTable

OK: Final = "ok"
ABSENT: Final = "absent"  # an optional table that was never written (e.g. quarantine with no bad rows yet)
MISSING: Final = "missing"
STALE: Final = "stale"
CORRUPT: Final = "corrupt"


@dataclass(frozen=True)
class TableHealth:
    name: str
    path: str
    required: bool
    status: str
    detail: str
    version: int | None = None
    last_commit_at: str | None = None
    files: int | None = None
    rows: int | None = None
    size_bytes: int | None = None
    small_files: int | None = None  # data files below the small-file size (see HEALTH_SMALL_FILE_MB)
    age_seconds: float | None = None
    columns: tuple[str, ...] = ()  # "name: type" of the latest schema

    @property
    def healthy(self) -> bool:
        return self.status == OK or (self.status == ABSENT and not self.required)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


def monitored_tables(cfg: StreamingConfig) -> dict[str, tuple[Path, bool]]:
    """name -> (path, required). Gold tables are required only when the gold stage runs."""
    gold = "gold" in cfg.continuous_stages
    return {
        "bronze": (cfg.bronze_path, True),
        "silver": (cfg.silver_path, True),
        "quarantine": (cfg.quarantine_path, False),
        "gold_hourly_sales": (cfg.gold_hourly_sales_path, gold),
        "gold_customer_windows": (cfg.gold_customer_windows_path, gold),
        "gold_fraud_rates": (cfg.gold_fraud_rates_path, gold),
    }


def check_table(
    name: str, path: Path, *, required: bool, now: datetime, max_age: timedelta, small_file_bytes: int = 0
) -> TableHealth:
    """Health of one table at instant ``now`` (explicit, so the check is reproducible and testable).

    ``small_file_bytes`` = 0 counts no file as small (callers without a threshold, e.g. a quick DAG check).
    """
    import pyarrow as pa
    from deltalake import DeltaTable

    if not (path / "_delta_log").is_dir():
        status = MISSING if required else ABSENT
        return TableHealth(name, str(path), required, status, f"no Delta log at {path / '_delta_log'}")
    try:
        table = DeltaTable(str(path))
        version = table.version()
        history = table.history(1)
        actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
        deleted = _deleted_rows(table)
    except Exception as exc:  # delta-rs raises several unrelated types for a damaged log
        return TableHealth(name, str(path), required, CORRUPT, f"cannot load the Delta log: {exc}")
    files = [str(f) for f in actions.get("path", [])]
    sizes = [int(n or 0) for n in actions.get("size_bytes", [])]
    columns = tuple(f"{f['name']}: {_type_name(f['type'])}" for f in json.loads(table.schema().to_json())["fields"])
    lost = [f for f in files if not (path / unquote(f)).is_file()]
    committed = _commit_time(history)
    rows = sum(int(n) for n in actions.get("num_records", []) if n is not None) - deleted
    stamp = committed.isoformat() if committed else None
    age = (now - committed) if committed else None

    def result(status: str, detail: str) -> TableHealth:
        return TableHealth(
            name,
            str(path),
            required,
            status,
            detail,
            version,
            stamp,
            len(files),
            rows,
            size_bytes=sum(sizes),
            small_files=sum(1 for b in sizes if b < small_file_bytes),
            age_seconds=round(age.total_seconds(), 1) if age is not None else None,
            columns=columns,
        )

    if lost:
        return result(CORRUPT, f"{len(lost)} of {len(files)} data files of version {version} are missing: {lost[0]}")
    if age is None:
        return result(CORRUPT, "the log has no commit timestamp")
    if age > max_age:
        return result(
            STALE, f"last commit {stamp} is {age.total_seconds() / 3600:.1f} h old (limit {_hours(max_age)} h)"
        )
    return result(OK, f"version {version}, {len(files)} files, {rows} rows, last commit {stamp}")


def check_tables(
    cfg: StreamingConfig, *, now: datetime, max_age: timedelta, small_file_bytes: int = 0
) -> list[TableHealth]:
    return [
        check_table(name, path, required=required, now=now, max_age=max_age, small_file_bytes=small_file_bytes)
        for name, (path, required) in monitored_tables(cfg).items()
    ]


def _deleted_rows(table: DeltaTable) -> int:
    """Rows of the table's files that its deletion vectors delete.

    A file's ``num_records`` counts every row written to it, also those a later MERGE marked deleted in a
    deletion vector (the gold tables), and delta-rs's add actions do not carry the vectors' cardinality. Its
    ``deletion_vectors()`` gives each such file's keep mask (read from the small vector files, no data file),
    so the deleted rows are its False entries. A table without deletion vectors gives none.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = pc.list_flatten(pa.table(table.deletion_vectors()).column("selection_vector"))
    return int(pc.sum(pc.invert(keep)).as_py() or 0)


def _commit_time(history: list[dict[str, Any]]) -> datetime | None:
    if not history or history[0].get("timestamp") is None:
        return None
    return datetime.fromtimestamp(int(history[0]["timestamp"]) / 1000, tz=UTC)


def _type_name(kind: Any) -> str:
    """Delta's JSON type: a primitive name, or a nested struct/array/map object (named by its kind)."""
    return kind if isinstance(kind, str) else str(kind.get("type", "?"))


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g}"
