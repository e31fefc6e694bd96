"""Whether a gold batch's cost stays flat while the gold tables grow, over a long freshness run.

A gold table gains rows with every hour of events (``customer_behaviour``: one per active customer-hour), and a
MERGE that rewrote files holding every window cost more with every batch (the defect fixed by partitioning the
tables by window). A ten-minute run cannot show that: its tables stay small. This module splits a long run into
equal time slices and reports, per gold table and slice, what its MERGE commits did and how long its streaming
batches took, next to the table's size:

* ``rows copied`` (``numTargetRowsCopied``: unchanged rows a MERGE rewrote because they share a file with a
  row it changed) and ``files removed`` come from the Delta log, so they do not depend on how loaded the
  machine was: a cost that grows with the table shows there first;
* ``MERGE ms`` (Delta's ``executionTimeMs``) and the query's batch duration (progress log) are wall times;
* the table's phase of each gold batch (``batch_phases.jsonl``: its aggregation and MERGE) says how much of the
  batch's time it took, as a mean over the slice's batches.

Inputs are what a freshness run leaves in its lane (the tables' ``_delta_log`` JSON commits, the progress and
phase logs), so the functions are pure and unit-tested without a service.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.freshness_tail import Batch


@dataclass(frozen=True)
class GoldCommit:
    """One commit of a gold table: when, what, and the operation metrics that matter here."""

    at: float  # epoch s (commitInfo timestamp)
    operation: str
    rows_added: int  # rows the table gained (inserted by a MERGE, written by the first append)
    rows_copied: int
    files_removed: int
    execution_ms: float


def _metric(metrics: dict[str, Any], name: str) -> int:
    return int(metrics.get(name) or 0)


def read_commits(table: Path) -> list[GoldCommit]:
    """The table's commits in version order, from its JSON log (empty if there is no table)."""
    log = table / "_delta_log"
    out = []
    for path in sorted(log.glob("[0-9]*.json")) if log.is_dir() else []:
        for line in path.read_text().splitlines():
            info = json.loads(line).get("commitInfo")
            if info is None:
                continue
            metrics = info.get("operationMetrics") or {}
            merge = info.get("operation") == "MERGE"
            out.append(
                GoldCommit(
                    at=int(info["timestamp"]) / 1000,
                    operation=str(info.get("operation")),
                    rows_added=_metric(metrics, "numTargetRowsInserted" if merge else "numOutputRows"),
                    rows_copied=_metric(metrics, "numTargetRowsCopied"),
                    files_removed=_metric(metrics, "numTargetFilesRemoved"),
                    execution_ms=float(metrics.get("executionTimeMs") or 0),
                )
            )
    return out


def _mean(values: Sequence[float]) -> float:
    """Mean of ``values``, 0 for a slice without any."""
    return statistics.fmean(values) if values else 0.0


@dataclass(frozen=True)
class Slice:
    """One time slice of one gold table (all means over the slice's MERGE commits or batches)."""

    start_min: float
    end_min: float
    table_rows: int  # at the end of the slice
    merges: int
    rows_copied_mean: float
    rows_copied_max: int
    files_removed_mean: float
    merge_ms_mean: float
    batches: int
    batch_s_mean: float
    # (phase, batches that ran it, mean seconds), in the order the batches ran them
    phases: tuple[tuple[str, int, float], ...] = ()


def _phase_means(runs: Sequence[Batch], phases: dict[int, dict[str, float]]) -> tuple[tuple[str, int, float], ...]:
    times: dict[str, list[float]] = {}
    for run in runs:
        for name, ms in phases.get(run.batch_id, {}).items():
            times.setdefault(name, []).append(ms / 1000)
    return tuple((name, len(seconds), _mean(seconds)) for name, seconds in times.items())


def slices(
    commits: Sequence[GoldCommit],
    batches: Sequence[Batch],
    start: float,
    end: float,
    count: int,
    *,
    phases: dict[int, dict[str, float]] | None = None,
) -> list[Slice]:
    """``count`` equal slices of ``start``..``end`` (epoch s); a commit or batch belongs where it ended/started.

    ``phases``: each batch id's phase milliseconds (one query of :func:`freshness_tail.read_phases`).
    """
    width = (end - start) / count
    rows = sum(c.rows_added for c in commits if c.at < start)
    out = []
    for i in range(count):
        lo, hi = start + i * width, start + (i + 1) * width
        inside = [c for c in commits if lo <= c.at < hi]
        merges = [c for c in inside if c.operation == "MERGE"]
        runs = [b for b in batches if lo <= b.start < hi]
        rows += sum(c.rows_added for c in inside)
        out.append(
            Slice(
                start_min=(lo - start) / 60,
                end_min=(hi - start) / 60,
                table_rows=rows,
                merges=len(merges),
                rows_copied_mean=_mean([c.rows_copied for c in merges]),
                rows_copied_max=max((c.rows_copied for c in merges), default=0),
                files_removed_mean=_mean([c.files_removed for c in merges]),
                merge_ms_mean=_mean([c.execution_ms for c in merges]),
                batches=len(runs),
                batch_s_mean=_mean([b.seconds for b in runs]),
                phases=_phase_means(runs, phases or {}),
            )
        )
    return out


def trend(
    gold_dir: Path,
    batches: Sequence[Batch],
    start: float,
    end: float,
    count: int = 4,
    *,
    phases: dict[str, dict[int, dict[str, float]]] | None = None,
) -> dict[str, list[Slice]]:
    """Per gold table under ``gold_dir``: its commits, the ``gold`` query's batches and the table's phase in them.

    ``phases``: the run's :func:`freshness_tail.read_phases` (every query); a gold batch has one phase per table.
    """
    tables = sorted(p for p in gold_dir.iterdir() if (p / "_delta_log").is_dir()) if gold_dir.is_dir() else []
    runs = [b for b in batches if b.query == "gold"]
    gold = (phases or {}).get("gold", {})
    return {
        table.name: slices(
            read_commits(table),
            runs,
            start,
            end,
            count,
            phases={batch: {k: ms for k, ms in p.items() if k == table.name} for batch, p in gold.items()},
        )
        for table in tables
    }


def _render_phases(phases: tuple[tuple[str, int, float], ...]) -> str:
    return ", ".join(f"{name} {seconds:.1f} ({n})" for name, n, seconds in phases) or "-"


def render(res: dict[str, list[Slice]]) -> list[str]:
    """Markdown lines for the benchmark section."""
    if not res:
        return ["- Gold per batch: no gold tables in this run."]
    lines = [
        "",
        "Gold per batch over the run, in equal time slices (`bench.gold_trend`; rows copied and files removed "
        "come from the Delta log and do not depend on the machine's load):",
        "",
        "| gold table | minutes | rows at end | MERGEs | rows copied, mean / max | files removed, mean "
        "| MERGE ms, mean | batches | batch s, mean | phases: s, mean (batches) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, rows in res.items():
        lines += [
            f"| {name} | {s.start_min:.1f}-{s.end_min:.1f} | {s.table_rows:,} | {s.merges} | "
            f"{s.rows_copied_mean:,.0f} / {s.rows_copied_max:,} | {s.files_removed_mean:.1f} | "
            f"{s.merge_ms_mean:,.0f} | {s.batches} | {s.batch_s_mean:.2f} | {_render_phases(s.phases)} |"
            for s in rows
        ]
    return lines
