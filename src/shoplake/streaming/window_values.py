"""The values behind customer_behaviour's large distinct counts, kept per window so silver is read once per hour.

customer_behaviour's register bitmaps give ``approx_count_distinct``'s value up to 364 occupied registers
(:mod:`.hll_bitmap`); a customer-hour above that is counted again from its values
(:func:`.gold.fill_large_distincts`). Counting them from silver meant reading all of the window's silver rows
(an hour of one-second micro-batch files, thousands of them) on every gold batch: 14 -> 37 s per batch within
each hour of the hour-long soak at 2,000 events/s. This table keeps what that count needs (the window, the
customer, the counted columns) for the windows that have such groups, and follows silver incrementally:

* the first fill of a window copies the window's rows from silver, at one silver version;
* each later fill appends only the rows silver committed since, from silver's change data feed (enabled on
  silver by :mod:`.table_properties`; for an append-only table Delta writes nothing extra and reads the
  commits' own data files);
* each append stores the silver version it reached in its rows, so a crash after the append loses nothing and
  a crash before it repeats the same rows, which no distinct count notices;
* a window no fill has touched for :data:`RETAIN` is dropped (a metadata-only delete of its partition). If it
  needs a fill again, it is copied from silver again. This keeps the table to the open windows, and every
  change-feed read starts well inside silver's retention (VACUUM keeps 7 days, :mod:`.maintenance`; the log
  cleanup keeps every version a held window may still follow, :func:`oldest_followed`).

Without a change data feed on silver (a silver table whose properties were never applied), the values come
from silver directly, as they always did.
"""

from __future__ import annotations

import datetime as dt
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any, Final

import pyarrow as pa
from delta.tables import DeltaTable
from deltalake import DeltaTable as LogTable
from deltalake.exceptions import TableNotFoundError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf

from shoplake.streaming import event_windows
from shoplake.streaming.batch_phases import BatchPhases
from shoplake.streaming.table_properties import CHANGE_DATA_FEED

RETAIN: Final = dt.timedelta(hours=1)
FOLLOW_MARGIN: Final = dt.timedelta(minutes=15)
WINDOW: Final = "window_start"
_VERSION: Final = "silver_version"
_RECORDED: Final = "recorded_at_epoch_s"


@dataclass(frozen=True)
class Recorded:
    """What a window's appends so far reached: the last silver version copied, and when."""

    version: int
    at_epoch_s: int


@dataclass(frozen=True)
class Plan:
    """What one fill does to the table, decided from the ledger alone (see :func:`plan`)."""

    drop: tuple[dt.datetime, ...]
    copy: tuple[dt.datetime, ...]
    follow: dict[dt.datetime, int]


def plan(windows: Sequence[dt.datetime], ledger: dict[dt.datetime, Recorded], version: int, now_s: int) -> Plan:
    """Drop windows untouched for :data:`RETAIN`; copy the asked-for windows not held; follow the rest.

    ``follow`` maps each held window that silver has moved past to the version its rows reach.
    """
    drop = tuple(w for w, rec in ledger.items() if now_s - rec.at_epoch_s > RETAIN.total_seconds())
    held = {w: rec for w, rec in ledger.items() if w not in drop}
    copy = tuple(w for w in windows if w not in held)
    follow = {w: held[w].version for w in windows if w in held and held[w].version < version}
    return Plan(drop, copy, follow)


def ledger(files: Sequence[dict[str, Any]]) -> dict[dt.datetime, Recorded]:
    """Each window's :class:`Recorded` from the table's files (the Delta log's partition values and statistics).

    Every append writes one version and one time into all its rows, so a file's maxima are its append's. A file
    without statistics counts as recorded at epoch 0, so :func:`plan` drops its window and copies it again: a
    cost, never a wrong count. Delta stores timestamp partitions in UTC and the log reader returns them as naive
    UTC; the windows a fill asks for come from Spark, whose Python datetimes are naive local time, so the keys
    are converted to that.
    """
    held: dict[dt.datetime, Recorded] = {}
    for file in files:
        utc = file[f"partition.{WINDOW}"].replace(tzinfo=dt.UTC)
        window = dt.datetime.fromtimestamp(utc.timestamp())
        version, at = file[f"max.{_VERSION}"], file[f"max.{_RECORDED}"]
        reached = Recorded(-1, 0) if version is None or at is None else Recorded(int(version), int(at))
        before = held.get(window, reached)
        held[window] = Recorded(max(before.version, reached.version), max(before.at_epoch_s, reached.at_epoch_s))
    return held


def _ledger_of(path: str) -> dict[dt.datetime, Recorded]:
    try:
        table = LogTable(path)
    except TableNotFoundError:
        return {}
    files = pa.table(table.get_add_actions(flatten=True))
    return ledger(files.select([f"partition.{WINDOW}", f"max.{_VERSION}", f"max.{_RECORDED}"]).to_pylist())


def oldest_followed(path: str, now_s: int) -> int | None:
    """The oldest silver version a fill of the table at ``path`` may still follow from (see :func:`followed_floor`)."""
    return followed_floor(_ledger_of(path), now_s)


def followed_floor(held: dict[dt.datetime, Recorded], now_s: int) -> int | None:
    """The oldest silver version a fill may still follow from ``held`` windows (None: none can be followed).

    The floor :mod:`.log_cleanup` keeps silver's log from: a window untouched for :data:`RETAIN` is dropped by
    the next fill (:func:`plan`), never followed, so it holds nothing back. :data:`FOLLOW_MARGIN` more covers a
    fill that planned to follow a window just before it expired and is still reading.
    """
    horizon = (RETAIN + FOLLOW_MARGIN).total_seconds()
    live = [rec.version for rec in held.values() if now_s - rec.at_epoch_s <= horizon]
    return min(live) if live else None


@dataclass(frozen=True)
class WindowValues:
    """The table at ``path``: ``columns`` of silver's rows per hour window, for the windows a fill asks for."""

    spark: SparkSession
    path: str
    silver_path: str
    columns: tuple[str, ...]

    def rows(self, windows: Sequence[dt.datetime], phases: BatchPhases) -> DataFrame:
        """The (``window_start``, ``columns``) rows silver holds for ``windows``, after bringing them up to date.

        ``phases`` gets the time spent deciding what to do (``fill_ledger``) and appending (``fill_append``).
        """
        with phases.phase("fill_ledger"):
            silver = LogTable(self.silver_path)
            if silver.metadata().configuration.get(CHANGE_DATA_FEED) != "true":
                return self._silver(windows, None)
            version = silver.version()
            now_s = int(time.time())
            todo = plan(windows, self._ledger(), version, now_s)
            if todo.drop:
                DeltaTable.forPath(self.spark, self.path).delete(sf.col(WINDOW).isin(list(todo.drop)))
        parts = ([self._silver(todo.copy, version)] if todo.copy else []) + (
            [self._changes(todo.follow, version)] if todo.follow else []
        )
        if parts:
            with phases.phase("fill_append"):
                (
                    reduce(DataFrame.unionByName, parts)
                    # One shuffle: the distinct keeps the window's partitioning, so each window is one task and
                    # one file (the other order, distinct then repartition, shuffled twice).
                    .repartition(WINDOW)
                    .distinct()
                    .withColumn(_VERSION, sf.lit(version))
                    .withColumn(_RECORDED, sf.lit(now_s))
                    .write.format("delta")
                    .partitionBy(WINDOW)
                    .mode("append")
                    .save(self.path)
                )
        # Every asked-for window is held now (copied if it was not), so the table exists.
        return self.spark.read.format("delta").load(self.path).where(sf.col(WINDOW).isin(list(windows)))

    def _ledger(self) -> dict[dt.datetime, Recorded]:
        """What each held window reached, from the files' statistics in the Delta log (no Spark job).

        A Spark aggregation over the table cost ~0.5 s per fill on a table of 26 files and 7.9M rows; reading
        the log ~6 ms (both measured on one table, a scratch script with the soak's shapes).
        """
        return _ledger_of(self.path)

    def _silver(self, windows: Sequence[dt.datetime], version: int | None) -> DataFrame:
        """Silver's rows of ``windows`` (at ``version``, or the latest)."""
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        low, high = min(windows), max(windows) + dt.timedelta(hours=1)
        return (
            reader.load(self.silver_path)
            .where((sf.col("event_time") >= low) & (sf.col("event_time") < high))
            .withColumn(WINDOW, event_windows.hour().getField("start"))
            .where(sf.col(WINDOW).isin(list(windows)))
            .select(WINDOW, *self.columns)
        )

    def _changes(self, follow: dict[dt.datetime, int], version: int) -> DataFrame:
        """The rows silver committed to each window after the version it is held at, up to ``version``."""
        newer = reduce(
            operator.or_, ((sf.col(WINDOW) == w) & (sf.col("_commit_version") > held) for w, held in follow.items())
        )
        return (
            self.spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", min(follow.values()) + 1)
            .option("endingVersion", version)
            .load(self.silver_path)
            .where(sf.col("_change_type") == "insert")
            .withColumn(WINDOW, event_windows.hour().getField("start"))
            .where(newer)
            .select(WINDOW, *self.columns)
        )
