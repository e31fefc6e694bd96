"""The streaming fraud scorer: silver as it arrives -> the production model -> ``gold/fraud_alerts`` + Kafka.

A Spark Structured Streaming query (``scorer``, see :mod:`shoplake.runtime.jobs`) reads silver as a Delta
stream; Spark only says *which* transactions are new. Each micro-batch then:

1. **Checks the alias** - one registry call - and loads the version behind ``@production`` when it differs from
   the cached one, so a deployment takes effect at the next batch without a restart. With no production
   version the batch is skipped with a warning (continuous mode) - catch-up mode refuses to start instead.
2. **Builds the features with the training code** (:func:`shoplake.ml.features.build_features`, the version's
   own :class:`FeatureConfig`, the same Arrow -> pandas conversion as batch scoring), so there is no
   train/serve skew. The history the features need comes from silver via delta-rs, not from Spark state, so a
   restart needs nothing but the checkpoint (:class:`SilverHistory` rebuilds its caches on the first batch).
   It has two parts, because customer features only read a customer's own past while merchant/category risk
   reads everybody's labelled past: silver's last ``required_history`` is kept in memory (extended by the
   files each Delta commit adds, ~1 day of slack) and the batch's customers' rows are filtered from it; the
   labelled past of everyone is a :class:`~shoplake.ml.features.LabelRates` built once for a risk window and
   reused until the batches move past it (rebuilt every :data:`LABEL_STATE_STEP` of event time) - a batch
   builds only its customers' timelines, not ~14 days of everybody's rows. The counts behind the rates are
   integers, so the rates are bit-identical to batch scoring's. Memory: about ``required_history`` of
   silver's feature columns (17 days at 50,000 rows/day: ~850k rows) in the driver.
   *Trade-offs:* events that land in silver later than their successors were scored are seen only by later
   rows (as in batch scoring of an earlier window), and labelled rows arriving in silver more than
   ``label_delay - LABEL_STATE_STEP`` after their event time miss the label state until the scorer restarts.
3. **Writes alerts** (score >= the version's threshold): rows already in ``gold/fraud_alerts`` are dropped
   (anti-join on ``transaction_id`` over the batch's event dates), the rest go to Kafka first (keyed by
   ``transaction_id``, flushed) and are then appended to Delta. A replayed batch - or a reset checkpoint -
   therefore adds no Delta row twice; Kafka is at-least-once only across a crash between the two writes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from shoplake.config import Settings
from shoplake.ml import registry
from shoplake.ml.extract import EXTRACT_COLUMNS, to_frame
from shoplake.ml.features import FeatureConfig, LabelRates
from shoplake.ml.scoring import NoProductionModelError, score_frame

log = logging.getLogger(__name__)

# Silver columns the features read (no fraud_pattern: scoring never sees the simulator's ground truth).
OWN_COLUMNS: Final = tuple(c for c in EXTRACT_COLUMNS if c != "fraud_pattern")
# What merchant/category risk reads of everybody's rows.
RISK_COLUMNS: Final = ("event_time", "merchant_id", "merchant_category", "is_fraud")
# How far past the current batches the label state reaches (in event time) before it is rebuilt; the state
# can only hold labels already in silver, so this much of the label delay is spent on that bet.
LABEL_STATE_STEP: Final = timedelta(hours=6)
# How far the kept customer history may run behind the oldest row a batch needs before it is trimmed.
HISTORY_TRIM: Final = timedelta(days=1)
# Appended commits stay separate Arrow chunks until there are this many (filters slow down with many chunks).
HISTORY_MAX_CHUNKS: Final = 64
_FAR_FUTURE: Final = datetime(9999, 1, 1, tzinfo=UTC)
ALERT_COLUMNS: Final = (
    "transaction_id",
    "event_time",
    "customer_id",
    "merchant_id",
    "amount_cents",
    "currency",
    "fraud_score",
    "threshold",
    "model_version",
    "event_date",
)


@dataclass(frozen=True)
class LoadedModel:
    model: Any
    spec: registry.VersionSpec


class ProductionTracker:
    """The production model, re-resolved per batch and reloaded only when the alias points elsewhere."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current: LoadedModel | None = None
        self._client = registry.client(settings)

    def refresh(self) -> LoadedModel | None:
        version = registry.production_version(self._client, self.settings.ml.model_name)
        if version is None:
            return None
        if self.current is None or self.current.spec.version != str(version.version):
            spec = registry.version_spec(self._client, version)
            self.current = LoadedModel(registry.load_model(self.settings, spec.version), spec)
            log.info("scorer: now scoring with %s version %s", self.settings.ml.model_name, spec.version)
        return self.current


def _time_filter(names: set[str], start: datetime, end: datetime) -> ds.Expression:
    """``start <= event_time < end``, plus partition pruning on ``event_date`` when the table has it."""
    ts = pa.timestamp("us", tz="UTC")
    expr = (ds.field("event_time") >= pa.scalar(start, type=ts)) & (ds.field("event_time") < pa.scalar(end, type=ts))
    if "event_date" in names:
        last = (end - timedelta(microseconds=1)).date()
        expr &= (ds.field("event_date") >= pa.scalar(start.date())) & (ds.field("event_date") <= pa.scalar(last))
    return expr


class SilverHistory:
    """The silver rows a batch's features depend on (see the module docstring).

    Kept between batches, all bounded: the open Delta table (refreshed incrementally, not re-read from its
    log), the slim label rows of the last risk window (consecutive builds need nearly the same 14 days, so
    only the newly uncovered slice is read) and the :class:`LabelRates` built from them, which serves every
    batch whose risk windows it covers.
    """

    def __init__(self, silver: Path) -> None:
        self.silver = silver
        self._table: Any = None
        self._risk: pa.Table | None = None
        self._risk_range: tuple[datetime, datetime] | None = None
        self._labels: LabelRates | None = None
        self._labels_key: tuple[datetime, datetime, timedelta, timedelta] | None = None
        self._history: pa.Table | None = None
        self._history_from: datetime | None = None
        self._history_files: set[str] = set()

    def _dataset(self) -> ds.Dataset:
        from deltalake import DeltaTable

        if self._table is None:
            self._table = DeltaTable(str(self.silver))
        else:
            self._table.update_incremental()
        return self._table.to_pyarrow_dataset()

    def _risk_rows(self, dataset: ds.Dataset, lo: datetime, hi: datetime) -> pa.Table:
        """Risk columns of everyone in ``[lo, hi)`` (or beyond ``hi``: more never changes a rate), reading only
        what the cached slice does not cover."""
        names = set(dataset.schema.names)
        cached, span = self._risk, self._risk_range
        if cached is None or span is None or lo < span[0]:
            rows = dataset.to_table(columns=list(RISK_COLUMNS), filter=_time_filter(names, lo, hi))
        else:
            kept = cached.filter(
                pc.greater_equal(cached.column("event_time"), pa.scalar(lo, cached.schema.field("event_time").type))
            )
            if hi > span[1]:
                fresh = dataset.to_table(columns=list(RISK_COLUMNS), filter=_time_filter(names, span[1], hi))
                rows = pa.concat_tables([kept, fresh.cast(kept.schema)])
            else:
                rows, hi = kept, span[1]
        self._risk, self._risk_range = rows, (lo, hi)
        return rows

    def labels(self, start: datetime, end: datetime, config: FeatureConfig) -> LabelRates:
        """A label state holding every labelled event the risk features of rows in ``[start, end)`` read.

        Reused while it covers ``[start - label_delay - risk_window, end - label_delay)``; rebuilt reaching
        :data:`LABEL_STATE_STEP` (at most half the label delay) further, so a stream of batches rebuilds it
        about once per step of event time instead of per batch.
        """
        lo = start - config.label_delay - config.risk_window
        hi = end - config.label_delay
        key = self._labels_key
        horizons = (config.label_delay, config.risk_window)
        if self._labels is not None and key is not None and key[2:] == horizons and key[0] <= lo and hi <= key[1]:
            return self._labels
        reach = hi + min(LABEL_STATE_STEP, config.label_delay / 2)
        rows = self._risk_rows(self._dataset(), lo, reach)
        self._labels = label_rates(rows)
        self._labels_key = (lo, reach, *horizons)
        log.info("scorer: label state rebuilt: %s labelled events in [%s, %s)", self._labels.events, lo, reach)
        return self._labels

    def _history_rows(self, dataset: ds.Dataset, lo: datetime) -> pa.Table:
        """Every silver row from ``lo`` on (feature columns), reading only the files added since the last call.

        A Delta commit only adds files unless it rewrites some (compaction, overwrite): then, or when ``lo`` is
        older than what is kept, everything is read again. Rows older than ``lo`` are dropped once they are
        :data:`HISTORY_TRIM` behind, so memory stays at about ``required_history`` of silver.
        """
        fragments = list(dataset.get_fragments())
        paths = {fragment.path for fragment in fragments}
        names = set(dataset.schema.names)
        cached, kept_from = self._history, self._history_from
        if cached is None or kept_from is None or lo < kept_from or not self._history_files <= paths:
            rows = dataset.to_table(columns=list(OWN_COLUMNS), filter=_time_filter(names, lo, _FAR_FUTURE))
            kept_from = lo
        else:
            new = [fragment for fragment in fragments if fragment.path not in self._history_files]
            rows = cached
            if new:
                added = ds.FileSystemDataset(new, dataset.schema, dataset.format, dataset.filesystem)
                fresh = added.to_table(columns=list(OWN_COLUMNS), filter=_time_filter(names, kept_from, _FAR_FUTURE))
                rows = pa.concat_tables([cached, fresh.cast(cached.schema)])
                if rows.column(0).num_chunks > HISTORY_MAX_CHUNKS:  # not per batch: it copies the whole history
                    rows = rows.combine_chunks()
            if lo - kept_from > HISTORY_TRIM:
                time_type = rows.schema.field("event_time").type
                rows = rows.filter(pc.greater_equal(rows.column("event_time"), pa.scalar(lo, time_type)))
                kept_from = lo
        self._history, self._history_from, self._history_files = rows, kept_from, paths
        return rows

    def frame(self, customers: pa.Array, start: datetime, end: datetime, config: FeatureConfig) -> pd.DataFrame:
        """The batch's customers' own rows (every column, the whole ``required_history`` up to ``end``)."""
        lo = start - config.required_history()
        rows = self._history_rows(self._dataset(), lo)
        time_type = rows.schema.field("event_time").type
        times = rows.column("event_time")
        own = rows.filter(
            pc.and_(
                pc.and_(pc.greater_equal(times, pa.scalar(lo, time_type)), pc.less(times, pa.scalar(end, time_type))),
                pc.is_in(rows.column("customer_id"), value_set=customers.cast(rows.schema.field("customer_id").type)),
            )
        )
        return to_frame(own)


def label_rates(rows: pa.Table) -> LabelRates:
    """:class:`LabelRates` of silver's risk columns (``event_time`` at the millisecond, as :func:`to_frame`)."""
    t = rows.column("event_time").combine_chunks().cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
    label = rows.column("is_fraud").combine_chunks()
    code = np.where(
        label.is_valid().to_numpy(zero_copy_only=False),
        label.fill_null(False).to_numpy(zero_copy_only=False),
        -1,
    ).astype(np.int8)

    def named(name: str) -> tuple[npt.NDArray[np.int64], pd.Index]:
        encoded = pc.dictionary_encode(rows.column(name).combine_chunks())
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        return codes, pd.Index(encoded.dictionary.to_pylist())

    return LabelRates(t.to_numpy(zero_copy_only=False), named("merchant_id"), named("merchant_category"), code)


def score_batch(history: SilverHistory, batch: pa.Table, loaded: LoadedModel) -> pa.Table:
    """Scores (the batch-scoring table) of the batch's transactions, features from silver as described above."""
    times = batch.column("event_time").cast(pa.timestamp("us", tz="UTC"))
    bounds = pc.min_max(times)
    start = bounds["min"].as_py().astimezone(UTC)
    end = bounds["max"].as_py().astimezone(UTC) + timedelta(microseconds=1)
    customers = pc.unique(batch.column("customer_id").cast(pa.string()))
    config = loaded.spec.feature_config
    frame = history.frame(customers, start, end, config)
    ids = pc.unique(batch.column("transaction_id").cast(pa.string()))
    target = pc.is_in(pa.array(frame["transaction_id"]).cast(pa.string()), value_set=ids)
    labels = history.labels(start, end, config)
    return score_frame(loaded.model, loaded.spec, frame, np.asarray(target.to_numpy(zero_copy_only=False)), labels)


def alerts_of(scored: pa.Table) -> pa.Table:
    """The flagged rows in the alerts table's columns."""
    return scored.filter(scored.column("is_flagged")).select(list(ALERT_COLUMNS))


def new_alerts(path: Path, alerts: pa.Table) -> pa.Table:
    """``alerts`` minus the transactions the table already holds (read: ids of the batch's event dates)."""
    from deltalake import DeltaTable

    if alerts.num_rows == 0 or not (path / "_delta_log").is_dir():
        return alerts
    dates = pc.unique(alerts.column("event_date"))
    existing = (
        DeltaTable(str(path))
        .to_pyarrow_dataset()
        .to_table(columns=["transaction_id"], filter=ds.field("event_date").isin(dates))
        .column("transaction_id")
    )
    return alerts.filter(pc.invert(pc.is_in(alerts.column("transaction_id"), value_set=existing)))


def append_alerts(path: Path, alerts: pa.Table) -> None:
    from deltalake import write_deltalake

    write_deltalake(str(path), alerts, mode="append", partition_by=["event_date"])


def alert_messages(alerts: pa.Table) -> list[tuple[str, bytes]]:
    """(key, JSON value) per alert; timestamps as ISO-8601 UTC, the date as ``YYYY-MM-DD``."""
    out = []
    for row in alerts.to_pylist():
        value = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
        out.append((str(row["transaction_id"]), json.dumps(value, sort_keys=True).encode()))
    return out


class AlertPublisher:
    """Idempotent Kafka producer for the alerts topic; :meth:`publish` returns only when all are acknowledged."""

    def __init__(self, bootstrap_servers: str, topic: str, timeout: float = 30.0) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.timeout = timeout
        self._producer = Producer(
            {"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
        )

    def publish(self, messages: list[tuple[str, bytes]]) -> None:
        errors: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        for key, value in messages:
            self._producer.produce(self.topic, key=key.encode(), value=value, on_delivery=delivered)
            self._producer.poll(0)
        left = self._producer.flush(self.timeout)
        if left or errors:
            raise RuntimeError(f"alerts topic {self.topic}: {left} undelivered, errors {errors[:3]}")


@dataclass
class ScorerBatch:
    """``foreachBatch`` body of the scorer query (runs on the driver)."""

    history: SilverHistory
    alerts_path: Path
    tracker: ProductionTracker
    publisher: AlertPublisher

    def __call__(self, batch: Any, batch_id: int) -> None:
        loaded = self.tracker.refresh()
        if loaded is None:
            log.warning(
                "scorer: batch %s skipped: no version of %s has @%s (deploy one with `shoplake train`)",
                batch_id,
                self.tracker.settings.ml.model_name,
                registry.PRODUCTION_ALIAS,
            )
            return
        started = time.perf_counter()
        keys = batch.select("transaction_id", "customer_id", "event_time").toArrow()
        if keys.num_rows == 0:
            return
        fresh = new_alerts(self.alerts_path, alerts_of(score_batch(self.history, keys, loaded)))
        if fresh.num_rows:
            self.publisher.publish(alert_messages(fresh))
            append_alerts(self.alerts_path, fresh)
        log.info(
            "scorer batch %s: %s rows, %s new alerts, version %s, %.2f s",
            batch_id,
            keys.num_rows,
            fresh.num_rows,
            loaded.spec.version,
            time.perf_counter() - started,
        )


def require_production(settings: Settings) -> None:
    """Raise :class:`NoProductionModelError` unless a version carries ``@production`` (catch-up runs)."""
    if registry.production_version(registry.client(settings), settings.ml.model_name) is None:
        raise NoProductionModelError(
            f"the scorer needs a version of {settings.ml.model_name} with @{registry.PRODUCTION_ALIAS}; "
            "run `shoplake train` first (it deploys when the gates pass)"
        )
