"""Freshness, consumer lag and memory of the continuous streaming service under a steady produce rate.

What one run does (Kafka, the registry and PostgreSQL must be up: ``shoplake up postgres kafka registry``):

1. Writes a private copy of the streaming config (``conf/streaming.toml`` with its own topic, Delta tables,
   checkpoints and warehouse schema) and starts the continuous service with it through the same machinery
   as ``shoplake stream start`` (supervised background process, all configured queries).
2. Produces generated transactions at ``--rate`` events/s for ``--minutes`` (Kafka stamps each message with
   its creation time: that is "produced"), then waits until PostgreSQL holds every one of them.
3. Measures, per row:
   * **silver**: the moment the Delta commit that added the row's file became visible (the commit file's
     mtime) minus the row's Kafka timestamp;
   * **PostgreSQL raw**: the moment a poller (every ``--poll-ms``) first saw the row's upsert transaction
     committed (one ``loaded_at`` per transaction; the sink is a single sequential writer) minus the same
     timestamp. Values are upper bounds by up to one poll interval.
   Rows produced during the first ``--warmup-seconds`` (JIT, first batches) are excluded from the
   percentiles, and their count is reported.
4. Samples every 5 s: Kafka end offsets, the bronze query's processed offsets (its last committed batch in
   the checkpoint), rows in silver and in raw; the lag trend is the least-squares slope of each lag over
   the post-warm-up samples (events/s: ~0 means the pipeline keeps up, > 0 means it falls behind). The
   streaming service's RSS (driver JVM, its Python processes - driver and pyspark workers - and the whole
   tree) is sampled at the same time.
5. Traces the slowest 1 % of events to their micro-batches (``freshness_tail``): how much of their latency
   was waiting for the batch running when they were produced and how much their own batch, and what those
   batches had in common (a concurrent gold batch, a Delta checkpoint, a phase that took longer). The
   checkpoint times are read on every sample, as the silver commits are: the service's log cleanup deletes
   old ones during a long run.
6. With ``--native-memory``, runs the driver JVM with native memory tracking and reports which of its areas
   grew over the steady part and how much of the RSS growth lies outside them (``native_memory``).
7. Splits the run into slices (one per 10 minutes, at least four) and reports the medallion's batches (mean
   ms per phase) and silver freshness percentiles per slice (``medallion_trend``), and per gold table what its
   MERGE commits copied and how long its batches took as the table grew (``gold_trend``).

``--rate 2000 --minutes 10`` is the issue-4 freshness benchmark (section "Streaming freshness"); ``--minutes
60 --section soak`` the long run that shows whether gold's per-batch cost stays flat ("Streaming soak");
``--minutes 120 --section soak-long`` crosses several event-time hours: the driver's memory across the gold
windows that open and close, and the medallion's per-batch cost as bronze's and silver's Delta logs grow
("Streaming soak (several hours)"); a
higher ``--rate`` with ``--section load-test`` is the issue-9 load test ("Streaming load test"). ``--find-rate
START,STEP,MAX`` first searches that rate (short probes, see ``rate_search``), then runs the load test at the
highest rate that kept up.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import psycopg
import pyarrow.parquet as pq
from confluent_kafka import Producer
from psycopg import sql

from bench.benchmarks_md import write_section
from bench.freshness_tail import (
    MEDALLION,
    CheckpointTimes,
    Commit,
    attribute,
    latencies,
    read_batches,
    read_compactions,
    read_phases,
    render_compactions,
)
from bench.freshness_tail import render as render_tail
from bench.gold_trend import render as render_gold_trend
from bench.gold_trend import trend as gold_trend
from bench.medallion_trend import render as render_medallion_trend
from bench.medallion_trend import slices as medallion_slices
from bench.native_memory import NativeMemory, with_tracking
from bench.native_memory import render as render_native_memory
from bench.process_tree import cpu_seconds, loadavg, read, tree
from bench.rate_search import Probe, judge, parse_rates, render_probes, search
from shoplake.config import Settings, get_settings
from shoplake.ingestion.avro_encoder import KEY_WIDTH, encode_batch
from shoplake.ingestion.generator import generate
from shoplake.ingestion.producer import producer_config
from shoplake.ingestion.topics import ensure_topic
from shoplake.ingestion.verify import end_offsets
from shoplake.lakehouse.compaction import results_path as compaction_results
from shoplake.pipeline.config import StreamingConfig, load_streaming_config
from shoplake.runtime.batch_phases import phases_path

SECTIONS = {
    "freshness": "## Streaming freshness",
    "load-test": "## Streaming load test",
    "soak": "## Streaming soak",
    "soak-long": "## Streaming soak (several hours)",
}
SAMPLE_SECONDS = 5.0


# ---- the private pipeline -----------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_text(doc: dict[str, dict[str, Any]]) -> str:
    """The config's shape only (tables of scalars and lists): enough for the streaming config file."""
    out = []
    for section, values in doc.items():
        out.append(f"[{section}]")
        out += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        out.append("")
    return "\n".join(out)


@dataclasses.dataclass(frozen=True)
class Lane:
    settings: Settings  # points STREAMING_CONFIG at the private config
    topic: str
    root: Path  # Delta tables and checkpoints of this run
    schema: str  # PostgreSQL schema of raw.transactions' private copy


def make_lane(settings: Settings, stamp: str, compaction_interval: str | None = None) -> Lane:
    """A private topic, tables, checkpoints and PostgreSQL schema; ``compaction_interval`` overrides the config's."""
    topic = f"{settings.kafka.topic}.bench-fresh-{stamp}"
    rel = Path(f"bench-fresh-{stamp}")
    root = settings.lake.base_path / rel
    schema = f"bench_fresh_{stamp}"
    doc = tomllib.loads(settings.streaming_config.read_text())
    doc.setdefault("source", {})["topics"] = [topic]
    doc["source"]["starting_offsets"] = "earliest"
    doc["tables"] = {
        key: str(rel / value)
        for key, value in {
            "bronze": "bronze/transactions",
            "silver": "silver/transactions",
            "quarantine": "quarantine/transactions",
            "gold_hourly_sales": "gold/hourly_sales",
            "gold_customer_windows": "gold/customer_behaviour",
            "gold_fraud_rates": "gold/fraud_rates",
        }.items()
    }
    doc["paths"] = {"checkpoints": str(root / "checkpoints"), "progress_log": str(root / "progress.jsonl")}
    doc.setdefault("warehouse", {})["schema"] = schema
    if compaction_interval is not None:
        doc.setdefault("maintenance", {})["compaction_interval"] = compaction_interval
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "streaming.toml"
    conf.write_text(toml_text(doc))
    lane_settings = settings.with_env(STREAMING_CONFIG=conf, KAFKA_TOPIC=topic)
    ensure_topic(lane_settings)
    return Lane(lane_settings, topic, root, schema)


# ---- producing ------------------------------------------------------------------------------------------
def produce_steady(settings: Settings, rate: int, seconds: float, stop: threading.Event) -> dict[str, Any]:
    """Generated transactions at ``rate``/s (in 10 ms slices) for ``seconds``; returns counts and pacing."""
    from shoplake.contracts.registry import ensure_schema

    schema_id = ensure_schema(settings, subject=f"{settings.kafka.topic}-value").schema_id
    total = int(rate * seconds)
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    producer = Producer(producer_config(settings, on_delivery=on_delivery))
    start = datetime.now(UTC)
    batches = generate(total, 11, start, f"bench-fresh/{start.isoformat()}", span=timedelta(seconds=seconds))
    messages = _messages(encode_batch(b, schema_id) for b in batches)
    t0 = time.monotonic()
    sent, behind_max = 0, 0.0
    while sent < total and not stop.is_set():
        due = min(total, int((time.monotonic() - t0) * rate) + max(1, rate // 100))
        while sent < due:
            value, key = next(messages)
            try:
                producer.produce(settings.kafka.topic, value, key)
            except BufferError:
                producer.poll(0.05)
                producer.produce(settings.kafka.topic, value, key)
            sent += 1
        producer.poll(0)
        ahead = sent / rate - (time.monotonic() - t0)
        behind_max = max(behind_max, -ahead)
        if ahead > 0:
            time.sleep(ahead)  # pacing of a load generator, not a wait for a condition
    left = producer.flush(120)
    elapsed = time.monotonic() - t0
    if failures or left:
        raise SystemExit(f"producer: {len(failures)} failed, {left} unacknowledged; first: {failures[:3]}")
    return {"sent": sent, "seconds": elapsed, "rate": sent / elapsed, "max_behind_s": behind_max}


def _messages(batches: Iterator[Any]) -> Iterator[tuple[bytes, bytes]]:
    for batch in batches:
        data, offsets, keys = batch.data, batch.offsets.tolist(), batch.key_starts.tolist()
        for i, key in enumerate(keys):
            yield data[offsets[i] : offsets[i + 1]], data[key : key + KEY_WIDTH]


# ---- observing ------------------------------------------------------------------------------------------
# How long a warehouse transaction may take from its start (``loaded_at``) to its commit and still be counted:
# a partition's COPY + merge takes well under a second at 2,000 events/s; a miss shows in the drain warning.
COMMIT_LOOKBACK: Final = timedelta(seconds=10)


class RawPoller(threading.Thread):
    """Records when each warehouse upsert transaction (one ``loaded_at`` value) first became visible.

    ``loaded_at`` is the transaction's start time, and the medallion loads a batch's partitions in concurrent
    transactions, so they need not commit in ``loaded_at`` order: each poll looks back
    :data:`COMMIT_LOOKBACK` behind the newest value seen and counts only transactions it has not seen yet.
    """

    def __init__(self, dsn: str, schema: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.dsn, self.schema, self.interval = dsn, schema, interval
        self.first_seen: dict[datetime, float] = {}
        self.rows = 0
        self.stop = threading.Event()

    def run(self) -> None:
        table = sql.Identifier(self.schema, "transactions")
        query = sql.SQL(
            "SELECT loaded_at, count(*) FROM {} WHERE loaded_at > %s GROUP BY loaded_at ORDER BY loaded_at"
        ).format(table)
        newest = datetime(1970, 1, 1, tzinfo=UTC)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                exists = conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.transactions",)).fetchone()
                if exists and exists[0]:
                    seen = time.time()
                    for loaded_at, count in conn.execute(query, (newest - COMMIT_LOOKBACK,)).fetchall():
                        if loaded_at not in self.first_seen:
                            self.first_seen[loaded_at] = seen
                            self.rows += int(count)
                        newest = max(newest, loaded_at)
                self.stop.wait(self.interval)


def bronze_processed(checkpoint: Path) -> int:
    """Kafka records the bronze query has committed (sum over partitions of its last batch's end offsets)."""
    commits = [int(p.name) for p in (checkpoint / "commits").glob("[0-9]*")] if checkpoint.is_dir() else []
    if not commits:
        return 0
    lines = (checkpoint / "offsets" / str(max(commits))).read_text().splitlines()
    offsets = json.loads(lines[-1])
    return sum(int(o) for partitions in offsets.values() for o in partitions.values())


class CommitLog:
    """``(visible_at, added files, added records)`` per commit of a Delta table, oldest first, read as they land.

    Read on every sample, and kept: the service's log cleanup (``lakehouse/log_cleanup.py``) deletes commits
    older than ``[maintenance].log_retention``, so a run longer than that cannot read them back at its end.
    """

    def __init__(self, table: Path) -> None:
        self.table = table
        self.log = table / "_delta_log"
        self.seen: dict[str, tuple[float, list[str], int]] = {}

    def read(self) -> list[tuple[float, list[str], int]]:
        for path in sorted(self.log.glob("[0-9]*.json")) if self.log.is_dir() else []:
            if path.name in self.seen:
                continue
            try:
                self.seen[path.name] = _commit(path)
            except FileNotFoundError:  # cleaned up between the listing and the read: seen by an earlier one
                continue
        return [self.seen[name] for name in sorted(self.seen)]


def _commit(path: Path) -> tuple[float, list[str], int]:
    """What one commit made visible. A compaction's files (``dataChange: false``) hold rows committed before."""
    files, records = [], 0
    visible_at = path.stat().st_mtime
    for line in path.read_text().splitlines():
        action = json.loads(line)
        if "add" in action and action["add"].get("dataChange", True):
            files.append(action["add"]["path"])
            records += int(json.loads(action["add"].get("stats") or "{}").get("numRecords", 0))
    return visible_at, files, records


@dataclasses.dataclass
class Sample:
    t: float
    produced: int
    bronze: int
    silver: int
    raw: int
    jvm_rss: int
    tree_rss: int
    cpu: float


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None  # exited meanwhile


def service_rss(root: int) -> tuple[int, int]:
    """(driver JVM, whole service tree) resident bytes; the JVM's own, without the Python workers it forks.

    The JVM starts commands (the pyspark daemon, Hadoop's shell calls) with ``posix_spawn``: until the child
    execs, it runs the ``java`` executable in the JVM's own address space, so ``/proc`` shows it with the
    JVM's whole RSS though it adds no memory. Its ``comm`` is the spawning thread's name (seen: ``Thread-4``,
    ``Executor task l``, ``stream executio``), not ``java``, so only the executable tells it apart: the first
    process running the JVM's executable is the JVM, later ones are such children and are not counted.
    Counted (as "Python processes", since their ``comm`` is not ``java``), they were the one-sample spikes of
    one JVM more: session 4's 3.65 GB "Python processes" sample (~0.7 GB of Python + a 2.9 GB JVM), caught in
    session 5 with a 0.2 s sampler. The resident size is read again after the executable: read before it (with
    the tree), a child that execs in between showed the JVM's size under its new executable (the soak of session
    10: one 3.67 GB "Python processes" sample).
    """
    jvm_pid, jvm_exe = driver_jvm(root) or (None, "")
    jvm, total = 0, 0
    for proc in tree(root):
        exe = _exe(proc.pid)
        if exe is None or (exe == jvm_exe and proc.pid != jvm_pid):
            continue
        now = read(proc.pid)
        if now is None:
            continue
        rss = now.rss_pages * _PAGE
        if proc.pid == jvm_pid:
            jvm = rss
        total += rss
    return jvm, total


def driver_jvm(root: int) -> tuple[int, str] | None:
    """(pid, java executable) of the service's driver JVM: the first ``java`` of its tree (see service_rss)."""
    for proc in tree(root):
        exe = _exe(proc.pid)
        if exe is not None and exe.endswith("/java"):
            return proc.pid, exe
    return None


class Sampler(threading.Thread):
    def __init__(self, lane: Lane, service_pid: int, poller: RawPoller, nmt: NativeMemory | None = None) -> None:
        super().__init__(daemon=True)
        self.lane, self.service_pid, self.poller = lane, service_pid, poller
        # Native memory tracking's baseline is taken with the first sample after the warm-up.
        self.nmt, self.nmt_from = nmt, float("inf")
        self.samples: list[Sample] = []
        self.stop = threading.Event()
        self.silver = CommitLog(lane.root / "silver/transactions")
        self.checkpoints = CheckpointTimes([lane.root / "bronze/transactions", lane.root / "silver/transactions"])

    def take(self) -> Sample:
        produced = sum(end_offsets(self.lane.settings, self.lane.topic).values())
        silver = sum(records for _, _, records in self.silver.read())
        self.checkpoints.read()
        jvm_rss, tree_rss = service_rss(self.service_pid)
        return Sample(
            time.time(),
            produced,
            bronze_processed(self.lane.root / "checkpoints" / "medallion"),
            silver,
            self.poller.rows,
            jvm_rss,
            tree_rss,
            cpu_seconds(self.service_pid),
        )

    def run(self) -> None:
        while not self.stop.is_set():
            sample = self.take()
            self.samples.append(sample)
            if self.nmt is not None and not self.nmt.pid and sample.t >= self.nmt_from:
                jvm = driver_jvm(self.service_pid)
                if jvm is not None:
                    self.nmt.baseline(*jvm, sample.jvm_rss)
            self.stop.wait(SAMPLE_SECONDS)


# ---- results --------------------------------------------------------------------------------------------
def silver_commits(log: CommitLog) -> list[Commit]:
    """Each silver commit's visibility time and the Kafka timestamps (epoch s) of the rows it added."""
    out = []
    for visible_at, files, _ in log.read():
        stamps = [np.array([])]
        for name in files:
            # Spark may write INT96 or INT64 timestamps: go through numpy's datetime64 to get microseconds.
            column = pq.read_table(log.table / name, columns=["kafka_timestamp"]).column(0).to_numpy()
            stamps.append(column.astype("datetime64[us]").astype(np.int64) / 1e6)
        out.append(Commit(visible_at, np.concatenate(stamps)))
    return out


def raw_latencies(dsn: str, schema: str, first_seen: dict[datetime, float], since_ms: float) -> np.ndarray:
    query = sql.SQL("SELECT loaded_at, (extract(epoch FROM kafka_timestamp) * 1000)::float8 FROM {}").format(
        sql.Identifier(schema, "transactions")
    )
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(query).fetchall()
    lat = [first_seen[loaded] * 1000.0 - ts for loaded, ts in rows if ts >= since_ms and loaded in first_seen]
    return np.array(lat) / 1000.0


def percentiles(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"n": int(values.size), "p50": p50, "p95": p95, "p99": p99, "max": float(values.max())}


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 for fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    return float(statistics.linear_regression(xs, ys).slope)


def summarise(samples: list[Sample], warm_from: float, produce_end: float) -> dict[str, Any]:
    steady = [s for s in samples if warm_from <= s.t <= produce_end] or samples
    ts = [s.t - steady[0].t for s in steady]
    lags = {
        "kafka -> bronze": [s.produced - s.bronze for s in steady],
        "kafka -> silver": [s.produced - s.silver for s in steady],
        "kafka -> PostgreSQL raw": [s.produced - s.raw for s in steady],
    }
    third = max(1, len(steady) // 3)
    lag = {
        name: {
            "slope_per_s": slope(ts, [float(v) for v in values]),
            "first_third": statistics.mean(values[:third]),
            "last_third": statistics.mean(values[-third:]),
            "max": max(values),
        }
        for name, values in lags.items()
    }
    mb = 1024 * 1024
    minutes = [t / 60 for t in ts]
    half = len(steady) // 2
    memory = {
        name: {
            "first": values[0] / mb,
            "last": values[-1] / mb,
            "max": max(values) / mb,
            "slope_mb_per_min": slope(minutes, [v / mb for v in values]),
            # Growth that levels off (JIT code cache, class metadata filling up) shows as a smaller second half.
            "second_half_mb_per_min": slope(minutes[half:], [v / mb for v in values[half:]]),
        }
        for name, values in (
            ("driver JVM", [s.jvm_rss for s in steady]),
            # The Python driver (foreachBatch bodies, toArrow results) and the pyspark workers (the decode UDF).
            ("Python processes", [s.tree_rss - s.jvm_rss for s in steady]),
            ("service tree", [s.tree_rss for s in steady]),
        )
    }
    cpu = (steady[-1].cpu - steady[0].cpu) / max(ts[-1], 1e-9)
    return {"lag": lag, "memory": memory, "cpu_cores": cpu, "samples": len(steady)}


def render(args: argparse.Namespace, load: dict[str, str], produced: dict[str, Any], res: dict[str, Any]) -> str:
    section = SECTIONS[args.section]
    s, r, summ = res["silver"], res["raw"], res["summary"]
    target = "meets" if s.get("p95", 1e9) <= 5 and r.get("p95", 1e9) <= 5 else "MISSES"

    def row(name: str, p: dict[str, Any]) -> str:
        if not p.get("n"):
            return f"| {name} | 0 | - | - | - | - |"
        return f"| {name} | {p['n']:,} | {p['p50']:.2f} | {p['p95']:.2f} | {p['p99']:.2f} | {p['max']:.2f} |"

    lines = [
        section,
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} cores (nproc), shared.",
        f"- Command: `.venv/bin/python -m bench.bench_freshness --rate {args.rate} --minutes {args.minutes:g}"
        + (f" --section {args.section}" if args.section != "freshness" else "")
        + (f" --find-rate {args.find_rate} --probe-seconds {args.probe_seconds:g}" if args.find_rate else "")
        + (" --native-memory" if args.native_memory else "")
        + (f" --compaction-interval '{args.compaction_interval}'" if args.compaction_interval else "")
        + "`",
        f"- Load average (1/5/15 min): start {load['start']}, end of producing {load['end']}.",
        f"- Produced {produced['sent']:,} events in {produced['seconds']:.1f} s ({produced['rate']:,.0f}/s; the "
        f"producer was at most {produced['max_behind_s']:.2f} s behind its schedule). The continuous service "
        f"(`shoplake stream start` machinery, queries {res['stages']}) ran with the project's `conf/streaming.toml`"
        " apart from topic/paths. Drained to PostgreSQL "
        f"{res['drain_seconds']:.1f} s after the last event.",
        f"- Rows produced in the first {args.warmup_seconds:g} s (warm-up) are excluded below; PostgreSQL was "
        f"polled every {args.poll_ms} ms (its figures are upper bounds by up to that).",
        "",
        "| event produced -> row visible in | rows | p50 s | p95 s | p99 s | max s |",
        "| --- | --- | --- | --- | --- | --- |",
        row("silver (Delta commit)", s),
        row("PostgreSQL raw (upsert committed)", r),
        "",
        f"- Target p95 <= 5 s: **{target}**.",
        f"- Streaming service CPU while producing: {summ['cpu_cores']:.2f} cores on average (of 2).",
        "",
        "| lag (events) over the steady run | first third (mean) | last third (mean) | max | trend |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, v in summ["lag"].items():
        lines.append(
            f"| {name} | {v['first_third']:,.0f} | {v['last_third']:,.0f} | {v['max']:,} | "
            f"{v['slope_per_s']:+.1f} events/s |"
        )
    lines += [
        "",
        "| memory (RSS, MB) | first sample | last sample | max | trend | trend, second half |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in summ["memory"].items():
        lines.append(
            f"| {name} | {m['first']:,.0f} | {m['last']:,.0f} | {m['max']:,.0f} | {m['slope_mb_per_min']:+.1f} MB/min "
            f"| {m['second_half_mb_per_min']:+.1f} MB/min |"
        )
    lines += [
        "",
        f"- {summ['samples']} samples every {SAMPLE_SECONDS:g} s between the end of the warm-up and the end of "
        "producing. Lag trend = least-squares slope; ~0 keeps up, positive falls behind (at a steady rate the lag "
        "oscillates with the trigger intervals, so compare thirds too).",
        *render_tail(res["tail"]),
        *render_compactions(res["compactions"]["runs"], res["compactions"]["start"]),
        *render_medallion_trend(res["medallion"]),
        *render_gold_trend(res["gold"]),
        *render_native_memory(res["native_memory"]),
    ]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=int, default=2000, help="events per second to produce")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to produce")
    parser.add_argument("--warmup-seconds", type=float, default=60.0, help="excluded from percentiles/trends")
    parser.add_argument("--poll-ms", type=int, default=100, help="PostgreSQL visibility poll interval")
    parser.add_argument("--drain-seconds", type=float, default=300.0, help="max wait for the pipeline to catch up")
    parser.add_argument("--section", choices=sorted(SECTIONS), default="freshness")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true", help="keep the run's topic, tables and schema")
    parser.add_argument(
        "--native-memory",
        action="store_true",
        help="run the driver JVM with native memory tracking and report which area grows (a few %% overhead)",
    )
    parser.add_argument(
        "--compaction-interval",
        metavar="INTERVAL",
        help="the service's [maintenance].compaction_interval for this run ('5 minutes', 'off'; default: the config's)",
    )
    parser.add_argument(
        "--find-rate",
        metavar="START,STEP,MAX",
        help="probe these rates first and run the load test at the highest one that keeps up (--rate is ignored)",
    )
    parser.add_argument(
        "--probe-seconds", type=float, default=120.0, help="judged time of one --find-rate probe (after its warm-up)"
    )
    args = parser.parse_args()
    if args.find_rate:
        try:
            parse_rates(args.find_rate)
        except ValueError as exc:
            parser.error(str(exc))
        if args.probe_seconds < 20:
            parser.error("--probe-seconds must be >= 20 (a lag trend needs several 5 s samples)")
        args.section = "load-test"
    if args.rate < 1 or args.minutes <= 0 or args.poll_ms < 10 or args.warmup_seconds < 0:
        parser.error("--rate >= 1, --minutes > 0, --poll-ms >= 10 and --warmup-seconds >= 0 are required")
    if args.warmup_seconds >= args.minutes * 60:
        parser.error("--warmup-seconds must be shorter than the run")
    return args


def batch_trends(
    cfg: StreamingConfig, lane: Lane, sampler: Sampler, commits: list[Commit], *, start: float, end: float, since: float
) -> dict[str, Any]:
    """The tail attribution, and the medallion's and gold's per-batch cost in slices of 10 minutes (at least 4).

    In a long run the slices show whether a medallion phase or gold's per-batch cost grows with the tables.
    """
    batches = read_batches(cfg.metrics_path)
    phases = read_phases(phases_path(cfg.metrics_path))
    medallion = phases.get(MEDALLION, {})
    compactions = read_compactions(compaction_results(cfg.metrics_path))
    count = max(4, round((end - start) / 600))
    checkpoints = sampler.checkpoints.read()
    return {
        "tail": attribute(commits, batches, medallion, checkpoints, since=since, compactions=compactions),
        "compactions": {"start": start, "runs": compactions},
        "medallion": medallion_slices(commits, batches, medallion, start=start, end=end, count=count, since=since),
        "gold": gold_trend(lane.root / "gold", batches, start, end, count, phases=phases),
    }


def measure(settings: Settings, lane: Lane, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the service, produce, drain; returns (producer stats, measurements incl. load averages)."""
    from shoplake.runtime import service
    from shoplake.stack import process

    cfg = load_streaming_config(lane.settings)
    load = {"start": loadavg()}
    print(f"lane {lane.topic} {lane.root}; starting the streaming service", flush=True)
    saved_env = dict(os.environ)
    if args.native_memory:
        os.environ.update(with_tracking(saved_env))
    try:
        pid = service.start_background(lane.settings)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    poller = RawPoller(settings.postgres.dsn(), lane.schema, args.poll_ms / 1000)
    sampler = Sampler(lane, pid, poller, NativeMemory() if args.native_memory else None)
    stop = threading.Event()
    try:
        poller.start()
        sampler.start()
        t_start = time.time()
        sampler.nmt_from = t_start + args.warmup_seconds
        produced = produce_steady(lane.settings, args.rate, args.minutes * 60, stop)
        produce_end = time.time()
        if sampler.nmt is not None and sampler.nmt.pid:
            sampler.nmt.diff(service_rss(pid)[0])
        load["end"] = loadavg()
        print("produced", produced, flush=True)
        deadline = time.monotonic() + args.drain_seconds
        while poller.rows < produced["sent"] and time.monotonic() < deadline:
            if process.running_pid(settings.home, service.PROCESS_NAME) is None:
                raise SystemExit(f"the streaming service died; see {process.log_file(settings.home, 'stream')}")
            time.sleep(0.5)
        drain = time.time() - produce_end
        sampler.stop.set()
        sampler.join()
        poller.stop.set()
        poller.join()
        if poller.rows < produced["sent"]:
            print(f"WARNING: only {poller.rows} of {produced['sent']} rows reached PostgreSQL", flush=True)
    finally:
        stop.set()
        service.stop_background(lane.settings)
    since_ms = (t_start + args.warmup_seconds) * 1000.0
    commits = silver_commits(sampler.silver)
    return produced, {
        "load": load,
        "stages": list(cfg.continuous_stages),
        "drain_seconds": drain,
        "silver": percentiles(latencies(commits, since_ms / 1000.0)),
        **batch_trends(cfg, lane, sampler, commits, start=t_start, end=produce_end, since=since_ms / 1000.0),
        "raw": percentiles(raw_latencies(settings.postgres.dsn(), lane.schema, poller.first_seen, since_ms)),
        "summary": summarise(sampler.samples, t_start + args.warmup_seconds, produce_end),
        "raw_rows": poller.rows,
        "native_memory": sampler.nmt.result if sampler.nmt is not None else {},
    }


def main() -> int:
    from shoplake.runtime import service
    from shoplake.stack import process

    args = parse_args()
    settings = get_settings()
    if process.running_pid(settings.home, service.PROCESS_NAME) is not None:
        raise SystemExit(
            "a streaming service is already running (`shoplake stream stop` first): it would share the CPU"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    probes: list[Probe] = []
    if args.find_rate:
        best, probes = search(parse_rates(args.find_rate), lambda rate: run_probe(settings, args, stamp, rate))
        if best is None:
            raise SystemExit(f"not even {probes[0].rate}/s kept up ({probes[0].reason}): lower START")
        args.rate = best
    lane = make_lane(settings, stamp, args.compaction_interval)
    try:
        produced, res = measure(settings, lane, args)
    finally:
        if not args.keep:
            cleanup(settings, lane)
    print(json.dumps(res, default=str, indent=1), flush=True)
    text = render(args, res["load"], produced, res)
    if probes:
        text += render_probes(probes, args.probe_seconds)
    print(text)
    if not args.no_write:
        write_section(SECTIONS[args.section], text)
    return 0


def run_probe(settings: Settings, args: argparse.Namespace, stamp: str, rate: int) -> Probe:
    """One short freshness run at ``rate`` on a lane of its own (removed afterwards unless ``--keep``)."""
    # The warm-up comes on top: the service's first micro-batch (JVM start, JIT) can take longer than a
    # short probe, and a probe judged on that start-up would "fall behind" at any rate.
    short = {"rate": rate, "minutes": (args.warmup_seconds + args.probe_seconds) / 60}
    lane = make_lane(settings, f"{stamp}r{rate}", args.compaction_interval)
    try:
        produced, res = measure(settings, lane, argparse.Namespace(**{**vars(args), **short}))
    finally:
        if not args.keep:
            cleanup(settings, lane)
    return judge(rate, produced, res)


def cleanup(settings: Settings, lane: Lane) -> None:
    import shutil

    from shoplake.ingestion.topics import admin_client

    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(lane.schema)))
    admin_client(settings).delete_topics([lane.topic])
    shutil.rmtree(lane.root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
