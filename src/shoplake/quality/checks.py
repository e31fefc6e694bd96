"""The expectations on silver, as pure functions over Arrow columns and row counts.

Each returns a :class:`Check` (name, passed, observed, expected, detail) instead of raising, so one run
reports every broken expectation at once and the results can be stored and charted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    observed: str
    expected: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def not_null(table: pa.Table, columns: Sequence[str]) -> Check:
    nulls = {c: int(table.column(c).null_count) for c in columns}
    bad = {c: n for c, n in nulls.items() if n}
    detail = ", ".join(f"{c}: {n} nulls" for c, n in bad.items()) or f"{len(columns)} required columns complete"
    return Check("not_null", not bad, str(sum(bad.values())), "0 nulls", detail)


def in_range(table: pa.Table, bounds: Mapping[str, tuple[float | None, float | None]]) -> Check:
    """Values of each column within [low, high] (None = unbounded); nulls are not_null's business."""
    bad: dict[str, int] = {}
    for column, (low, high) in bounds.items():
        values = table.column(column)
        outside = pa.scalar(False)
        if low is not None:
            outside = pc.or_kleene(outside, pc.less(values, low))
        if high is not None:
            outside = pc.or_kleene(outside, pc.greater(values, high))
        count = int(pc.sum(pc.cast(pc.fill_null(outside, False), pa.int64())).as_py() or 0)
        if count:
            bad[column] = count
    detail = ", ".join(f"{c}: {n} rows outside {bounds[c]}" for c, n in bad.items()) or "all values in range"
    return Check("value_ranges", not bad, str(sum(bad.values())), "0 rows out of range", detail)


def unique(table: pa.Table, column: str) -> Check:
    rows = table.num_rows
    distinct = int(pc.count_distinct(table.column(column)).as_py())
    dupes = rows - distinct
    return Check(
        f"unique_{column}", dupes == 0, f"{dupes} duplicates", "0 duplicates", f"{rows} rows, {distinct} distinct"
    )


def references(table: pa.Table, allowed: Mapping[str, frozenset[str]]) -> Check:
    """Every code in ``column`` exists in its lookup (the dbt seeds the marts join to)."""
    unknown: dict[str, list[str]] = {}
    for column, values in allowed.items():
        seen = {str(v) for v in pc.unique(table.column(column)).to_pylist() if v is not None}
        missing = sorted(seen - values)
        if missing:
            unknown[column] = missing
    detail = "; ".join(f"{c}: unknown {', '.join(v[:5])}" for c, v in unknown.items()) or "every code is known"
    observed = str(sum(len(v) for v in unknown.values()))
    return Check("referential_integrity", not unknown, f"{observed} unknown codes", "0 unknown codes", detail)


def volume_bronze_vs_kafka(bronze_rows: int, consumed: int | None, tolerance: float) -> Check:
    """Every record the bronze query consumed from Kafka landed in bronze (the first hop loses nothing)."""
    if consumed is None:
        return Check("volume_bronze_vs_kafka", False, f"{bronze_rows} rows", "Kafka offsets", "Kafka unreachable")
    ok = bronze_rows >= consumed * (1 - tolerance)
    return Check(
        "volume_bronze_vs_kafka", ok, f"{bronze_rows} rows", f">= {consumed} consumed records (-{tolerance:.0%})", ""
    )


def volume_silver_vs_bronze(silver_rows: int, bronze_rows: int, quarantined: int) -> Check:
    """silver + quarantine never exceed bronze (nothing invented); the rest are duplicates dropped by design."""
    dropped = bronze_rows - quarantined - silver_rows
    ok = dropped >= 0 and (silver_rows > 0 or bronze_rows == quarantined)
    detail = f"{bronze_rows} bronze = {silver_rows} silver + {quarantined} quarantined + {dropped} duplicates"
    return Check("volume_silver_vs_bronze", ok, f"{silver_rows} rows", f"<= {bronze_rows - quarantined}", detail)


def volume_raw_vs_silver(raw_rows: int | None, silver_rows: int, tolerance: float) -> Check:
    """The warehouse holds (nearly) every silver row the sink committed, before dbt publishes marts from it."""
    if raw_rows is None:
        return Check("volume_raw_vs_silver", False, "-", f">= {silver_rows}", "raw table missing or unreachable")
    ok = raw_rows >= silver_rows * (1 - tolerance)
    return Check("volume_raw_vs_silver", ok, f"{raw_rows} rows", f">= {silver_rows} silver rows (-{tolerance:.0%})", "")
