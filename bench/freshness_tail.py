"""Where the freshness tail comes from: each event's time to silver split into waiting and its own batch.

At a steady rate an event reaches silver in two parts: it *waits* while the micro-batch running when it was
produced finishes (a batch reads the offsets that exist when it starts), then its *own* batch runs until the
silver commit. So p99 is made of long batches, twice over: the one an event waited through and the one that
carried it. To say what makes a batch long, the slowest 1 % of events are traced to their batches and those
batches are compared with all others: duration, whether a gold batch ran at the same time (both share the
two cores; the fair scheduler favours the medallion, but a running gold task is not pre-empted), whether a
Delta checkpoint of bronze or silver was written inside it, and which recorded phase (``batch_phases.jsonl``)
took longer than usual.

Inputs are what a freshness run leaves in its lane: the progress log (one line per batch of every query: its
trigger time and duration), the batch phase log and the tables' ``_delta_log``. Pure functions over those
records, so they are unit-tested without a service.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from shoplake.files import rotated

MEDALLION = "medallion"


@dataclass(frozen=True)
class Batch:
    """One micro-batch of one query, in epoch seconds."""

    query: str
    batch_id: int
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def overlaps(self, other: Batch) -> bool:
        return self.start < other.end and other.start < self.end


def _json_lines(path: Path) -> Iterable[dict[str, Any]]:
    for source in (rotated(path), path):
        if not source.is_file():
            continue
        for line in source.read_text().splitlines():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash: the rest of the log still counts


def read_batches(progress_log: Path) -> list[Batch]:
    """Every query's batches from the progress log, oldest first."""
    out = []
    for rec in _json_lines(progress_log):
        start = datetime.fromisoformat(rec["timestamp"]).timestamp()
        out.append(Batch(rec["query"], int(rec["batch_id"]), start, start + rec["batch_duration_ms"] / 1000))
    return sorted(out, key=lambda b: b.start)


def read_phases(phase_log: Path) -> dict[str, dict[int, dict[str, float]]]:
    """Per query, per batch id: its phases' wall milliseconds (the last record wins after a replay)."""
    out: dict[str, dict[int, dict[str, float]]] = {}
    for r in _json_lines(phase_log):
        if "query" in r:
            out.setdefault(r["query"], {})[int(r["batch_id"])] = r["phases_ms"]
    return out


@dataclass(frozen=True)
class Compaction:
    """One run of the service's compaction (``compaction.jsonl``): when, and per table files removed -> added."""

    run: Batch
    files: dict[str, tuple[int, int]]


def read_compactions(path: Path) -> list[Compaction]:
    """The compaction runs in ``path``: its lines, one per table, grouped by the run's start."""
    runs: dict[float, tuple[float, dict[str, tuple[int, int]]]] = {}
    for r in _json_lines(path):
        files = runs.setdefault(float(r["at"]), (float(r["seconds"]), {}))[1]
        files[r["table"]] = (int(r["files_removed"]), int(r["files_added"]))
    return [
        Compaction(Batch("compaction", i, at, at + seconds), files)
        for i, (at, (seconds, files)) in enumerate(sorted(runs.items()))
    ]


class CheckpointTimes:
    """When each Delta checkpoint of ``tables`` was written (file mtimes), read as they land and kept.

    The service's log cleanup deletes checkpoints older than ``[maintenance].log_retention``: a run longer
    than that cannot read them back at its end, so the benchmark reads on every sample.
    """

    def __init__(self, tables: Iterable[Path]) -> None:
        self.logs = [t / "_delta_log" for t in tables]
        self.seen: dict[Path, float] = {}

    def read(self) -> list[float]:
        for log in self.logs:
            for path in log.glob("*.checkpoint*.parquet") if log.is_dir() else []:
                if path not in self.seen:
                    try:
                        self.seen[path] = path.stat().st_mtime
                    except FileNotFoundError:  # cleaned up between the listing and the stat
                        continue
        return sorted(self.seen.values())


@dataclass(frozen=True)
class Commit:
    """A silver commit: when it became visible and the Kafka timestamps (epoch s) of the rows it added."""

    visible_at: float
    produced: np.ndarray

    def latencies(self, since: float) -> np.ndarray:
        """Seconds from produced to visible of the rows produced at or after ``since`` (epoch s)."""
        return self.visible_at - self.produced[self.produced >= since]


def latencies(commits: Iterable[Commit], since: float) -> np.ndarray:
    """Every row's latency (:meth:`Commit.latencies`) over ``commits``, as one array (empty without rows)."""
    out = [c.latencies(since) for c in commits]
    return np.concatenate(out) if out else np.array([])


def _batch_at(batches: Sequence[Batch], starts: np.ndarray, t: float) -> int | None:
    """Index of the medallion batch running at ``t`` (the last one started at or before it)."""
    i = int(np.searchsorted(starts, t, side="right")) - 1
    return i if i >= 0 and batches[i].end >= t - 1.0 else None  # 1 s of slack: progress is written after commit


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def attribute(
    commits: Sequence[Commit],
    batches: Sequence[Batch],
    phases: dict[int, dict[str, float]],
    checkpoints: Sequence[float],
    *,
    since: float,
    quantile: float = 99.0,
    compactions: Sequence[Compaction] = (),
) -> dict[str, Any]:
    """Split latency into wait + own batch for all events and for those at or above ``quantile``.

    Events produced before ``since`` (the warm-up) are left out, as in the percentiles.
    """
    medallion = [b for b in batches if b.query == MEDALLION]
    others = [b for b in batches if b.query.startswith("gold")]
    starts = np.array([b.start for b in medallion])
    lat, wait, owner = [], [], []
    for c in commits:
        i = _batch_at(medallion, starts, c.visible_at)
        produced = c.produced[c.produced >= since]
        if i is None or produced.size == 0:
            continue
        lat.append(c.visible_at - produced)
        wait.append(medallion[i].start - produced)
        owner.append(np.full(produced.size, i))
    if not lat:
        return {"events": 0}
    latency, waited, own = np.concatenate(lat), np.concatenate(wait), np.concatenate(owner)
    cut = float(np.percentile(latency, quantile))
    tail = latency >= cut
    tail_ids = sorted(set(own[tail].tolist()))
    all_ids = sorted(set(own.tolist()))

    def profile(ids: list[int]) -> dict[str, float]:
        chosen = [medallion[i] for i in ids]
        before = [medallion[i - 1] for i in ids if i > 0]
        return {
            "batches": len(chosen),
            "median_s": statistics.median(b.seconds for b in chosen),
            "before_median_s": statistics.median(b.seconds for b in before) if before else 0.0,
            "gold_overlap": _share([any(b.overlaps(o) for o in others) for b in chosen]),
            "before_gold_overlap": _share([any(b.overlaps(o) for o in others) for b in before]),
            "checkpoint": _share([any(b.start <= t <= b.end for t in checkpoints) for b in chosen + before]),
            "compaction": _share([any(b.overlaps(c.run) for c in compactions) for b in chosen + before]),
        }

    def mean_phases(ids: list[int]) -> dict[str, float]:
        records = [phases[medallion[i].batch_id] for i in ids if medallion[i].batch_id in phases]
        names = sorted({name for r in records for name in r})
        return {n: statistics.fmean(r.get(n, 0.0) for r in records) for n in names} if records else {}

    return {
        "events": int(latency.size),
        "cut_s": cut,
        "all": {"wait_s": float(waited.mean()), "own_s": float((latency - waited).mean())},
        "tail": {"wait_s": float(waited[tail].mean()), "own_s": float((latency - waited)[tail].mean())},
        "tail_batches": profile(tail_ids),
        "all_batches": profile(all_ids),
        "tail_phases": mean_phases(tail_ids),
        "all_phases": mean_phases(all_ids),
    }


def render(res: dict[str, Any]) -> list[str]:
    """Markdown lines for the benchmark section."""
    if not res.get("events"):
        return ["- Tail attribution: no events could be matched to medallion batches."]
    t, a, tb, ab = res["tail"], res["all"], res["tail_batches"], res["all_batches"]
    lines = [
        "",
        f"Where the slowest 1 % of events (>= {res['cut_s']:.2f} s to silver) spent their time, against all "
        f"{res['events']:,} events (`bench.freshness_tail`):",
        "",
        "| | all events | slowest 1 % |",
        "| --- | --- | --- |",
        f"| waiting for the batch running when produced, mean s | {a['wait_s']:.2f} | {t['wait_s']:.2f} |",
        f"| own batch until the silver commit, mean s | {a['own_s']:.2f} | {t['own_s']:.2f} |",
        f"| medallion batches involved | {ab['batches']:,} | {tb['batches']:,} |",
        f"| own batch duration, median s | {ab['median_s']:.2f} | {tb['median_s']:.2f} |",
        f"| batch before it (waited through), median s | {ab['before_median_s']:.2f} | {tb['before_median_s']:.2f} |",
        f"| own batch overlapped a gold batch | {ab['gold_overlap']:.0%} | {tb['gold_overlap']:.0%} |",
        f"| batch before overlapped a gold batch | {ab['before_gold_overlap']:.0%} | {tb['before_gold_overlap']:.0%} |",
        f"| a bronze/silver Delta checkpoint written in either | {ab['checkpoint']:.0%} | {tb['checkpoint']:.0%} |",
        f"| the service's compaction ran during either | {ab['compaction']:.0%} | {tb['compaction']:.0%} |",
    ]
    tp, ap = res["tail_phases"], res["all_phases"]
    grown = sorted(((tp[n] - ap.get(n, 0.0), n) for n in tp), reverse=True)[:4]
    if grown:
        lines += [
            "",
            "| phase of the tail's own batches | all batches, mean ms | tail batches, mean ms |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {n} | {ap.get(n, 0.0):,.0f} | {tp[n]:,.0f} |" for _, n in grown]
    return lines


def render_compactions(runs: Sequence[Compaction], start: float) -> list[str]:
    """Markdown lines: each compaction run of the service, minutes into the run, files per table."""
    if not runs:
        return ["- The service's compaction did not run (its first run is one `compaction_interval` in)."]
    tables = list(dict.fromkeys(t for c in runs for t in c.files))
    lines = [
        "",
        "The service's compaction runs (`compaction.jsonl`; files removed -> added per table):",
        "",
        f"| started, min into the run | seconds | {' | '.join(tables)} |",
        f"| --- | --- | {' | '.join('---' for _ in tables)} |",
    ]
    for c in runs:
        files = " | ".join(f"{c.files[t][0]:,} -> {c.files[t][1]:,}" if t in c.files else "-" for t in tables)
        lines.append(f"| {(c.run.start - start) / 60:.1f} | {c.run.seconds:.1f} | {files} |")
    return lines
