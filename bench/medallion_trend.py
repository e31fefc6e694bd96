"""The medallion's cost and silver freshness per time slice of a freshness run.

A long run's whole-run percentiles and means hide a phase that grows: the dedup check crept from 29 to 86 ms
over the two-hour soak of session 14, and only a scratch script over the lane's logs showed it. Per equal
slice of the run, this gives the medallion batches that started in it (count, mean duration, mean of each
recorded phase from ``batch_phases.jsonl``) and the silver freshness percentiles of the events whose silver
commit became visible in it. Pure functions over the run's records, unit-tested without a service.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.freshness_tail import MEDALLION, Batch, Commit, latencies


@dataclass(frozen=True)
class Slice:
    """One time slice of the run: medallion batches started in it, events whose silver commit landed in it."""

    start_min: float
    end_min: float
    batches: int
    batch_ms_mean: float
    phases_ms: tuple[tuple[str, float], ...]  # (phase, mean ms over the slice's batches), in the order they ran
    events: int
    silver_p50_s: float
    silver_p95_s: float
    silver_p99_s: float


def slices(
    commits: Sequence[Commit],
    batches: Sequence[Batch],
    phases: dict[int, dict[str, float]],
    *,
    start: float,
    end: float,
    count: int,
    since: float,
) -> list[Slice]:
    """``count`` equal slices of ``start``..``end`` (epoch s); events produced before ``since`` are left out."""
    width = (end - start) / count
    medallion = [b for b in batches if b.query == MEDALLION]
    out = []
    for i in range(count):
        lo, hi = start + i * width, start + (i + 1) * width
        runs = [b for b in medallion if lo <= b.start < hi]
        recorded = [phases[b.batch_id] for b in runs if b.batch_id in phases]
        names = list(dict.fromkeys(name for record in recorded for name in record))
        latency = latencies([c for c in commits if lo <= c.visible_at < hi], since)
        p50, p95, p99 = np.percentile(latency, [50, 95, 99]) if latency.size else (np.nan, np.nan, np.nan)
        out.append(
            Slice(
                start_min=(lo - start) / 60,
                end_min=(hi - start) / 60,
                batches=len(runs),
                batch_ms_mean=statistics.fmean(b.seconds * 1000 for b in runs) if runs else 0.0,
                phases_ms=tuple((n, statistics.fmean(r.get(n, 0.0) for r in recorded)) for n in names),
                events=int(latency.size),
                silver_p50_s=float(p50),
                silver_p95_s=float(p95),
                silver_p99_s=float(p99),
            )
        )
    return out


def render(rows: Sequence[Slice]) -> list[str]:
    """Markdown lines for the benchmark section: one row per slice, one column per recorded phase."""
    if not any(s.batches for s in rows):
        return ["- Medallion per slice: no medallion batches were recorded."]
    names = list(dict.fromkeys(name for s in rows for name, _ in s.phases_ms))
    lines = [
        "",
        "The medallion over the run, in equal time slices (`bench.medallion_trend`): batches that started in "
        "the slice and their mean ms per phase; silver freshness of the events whose commit landed in it.",
        "",
        "| minutes | batches | batch ms | " + " | ".join(names) + " | events | silver p50 / p95 / p99 s |",
        "| --- | --- | --- | " + " | ".join("---" for _ in names) + " | --- | --- |",
    ]
    for s in rows:
        means = dict(s.phases_ms)
        cells = " | ".join(f"{means[n]:,.0f}" if n in means else "-" for n in names)
        freshness = f"{s.silver_p50_s:.2f} / {s.silver_p95_s:.2f} / {s.silver_p99_s:.2f}" if s.events else "-"
        lines.append(
            f"| {_minutes(s.start_min)}-{_minutes(s.end_min)} | {s.batches:,} | {s.batch_ms_mean:,.0f} | {cells} | "
            f"{s.events:,} | {freshness} |"
        )
    return lines


def _minutes(value: float) -> str:
    """Whole minutes without a decimal: a run's slices are a fraction of a second longer than planned."""
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"
