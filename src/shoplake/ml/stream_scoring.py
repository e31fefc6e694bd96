"""The streaming fraud scorer: silver as it arrives -> the production model -> ``gold/fraud_alerts`` + Kafka.

A Spark Structured Streaming query (``scorer``, see :mod:`shoplake.streaming.jobs`) reads silver as a Delta
stream; Spark only says *which* transactions are new. Each micro-batch then:

1. **Checks the alias** - one registry call - and loads the version behind ``@production`` when it differs from
   the cached one, so a deployment takes effect at the next batch without a restart. With no production
   version the batch is skipped with a warning (continuous mode) - catch-up mode refuses to start instead.
2. **Builds the features with the training code** (:func:`shoplake.ml.features.build_features`, the version's
   own :class:`FeatureConfig`, the same Arrow -> pandas conversion as batch scoring), so there is no
   train/serve skew. The history the features need is looked up in silver with delta-rs per batch instead of
   being kept as Spark state, so state stays bounded (:class:`SilverHistory`: the model, an open table
   handle, one cached risk window) and a restart needs nothing but the checkpoint. The lookup has two parts -
   the batch's customers' own rows over the full horizon, and only the label/merchant columns of everyone
   else over the risk window - because customer features only read a customer's own past while
   merchant/category risk reads everybody's labelled past.
   *Trade-offs:* every batch still builds features over the whole risk window (~14 days of rows), which is
   what bounds per-batch latency at high daily volumes; events that land in silver later than their
   successors were scored are seen only by later rows (as in batch scoring of an earlier window), and rows
   arriving more than the label delay late miss the cached risk window until the scorer restarts.
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
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from shoplake.config import Settings
from shoplake.ml import registry
from shoplake.ml.extract import EXTRACT_COLUMNS, to_frame
from shoplake.ml.features import FeatureConfig
from shoplake.ml.scoring import NoProductionModelError, score_frame

log = logging.getLogger(__name__)

# Silver columns the features read (no fraud_pattern: scoring never sees the simulator's ground truth).
OWN_COLUMNS: Final = tuple(c for c in EXTRACT_COLUMNS if c != "fraud_pattern")
# What merchant/category risk reads of other customers' rows; the rest is filled with neutral constants.
RISK_COLUMNS: Final = ("transaction_id", "event_time", "customer_id", "merchant_id", "merchant_category", "is_fraud")
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
        version = registry.production_version(self._client, self.settings.ml_model_name)
        if version is None:
            return None
        if self.current is None or self.current.spec.version != str(version.version):
            spec = registry.version_spec(self._client, version)
            self.current = LoadedModel(registry.load_model(self.settings, spec.version), spec)
            log.info("scorer: now scoring with %s version %s", self.settings.ml_model_name, spec.version)
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
    """The silver rows a batch's features depend on, looked up per batch (see the module docstring).

    Two things survive between batches, both bounded: the open Delta table (refreshed incrementally, not
    re-read from its log) and the slim risk rows of the last risk window - consecutive batches need nearly the
    same 14 days of labels, so only the newly uncovered slice is read. Rows that land in silver more than the
    label delay after their event time, behind the cached slice, are not added to it (documented trade-off).
    """

    def __init__(self, silver: Path) -> None:
        self.silver = silver
        self._table: Any = None
        self._risk: pa.Table | None = None
        self._risk_range: tuple[datetime, datetime] | None = None

    def _dataset(self) -> ds.Dataset:
        from deltalake import DeltaTable

        if self._table is None:
            self._table = DeltaTable(str(self.silver))
        else:
            self._table.update_incremental()
        return self._table.to_pyarrow_dataset()

    def _risk_rows(self, dataset: ds.Dataset, lo: datetime, hi: datetime) -> pa.Table:
        """Risk columns of everyone in ``[lo, hi)``, reading only what the cached slice does not cover."""
        names = set(dataset.schema.names)
        cached, span = self._risk, self._risk_range
        if cached is None or span is None or lo < span[0] or hi < span[1]:
            rows = dataset.to_table(columns=list(RISK_COLUMNS), filter=_time_filter(names, lo, hi))
        else:
            fresh = dataset.to_table(columns=list(RISK_COLUMNS), filter=_time_filter(names, span[1], hi))
            kept = cached.filter(
                pc.greater_equal(cached.column("event_time"), pa.scalar(lo, cached.schema.field("event_time").type))
            )
            rows = pa.concat_tables([kept, fresh.cast(kept.schema)])
        self._risk, self._risk_range = rows, (lo, hi)
        return rows

    def frame(self, customers: pa.Array, start: datetime, end: datetime, config: FeatureConfig) -> pd.DataFrame:
        """History + batch rows for a batch spanning ``[start, end)`` of ``customers``, as pandas.

        Own rows: every column, the whole ``required_history``. Other customers: only risk columns, only where
        a label can already count (``[start - label_delay - risk_window, end - label_delay)``); their other
        columns get neutral constants (never scored; zeros keep the timelines' prefix sums finite).
        """
        dataset = self._dataset()
        names = set(dataset.schema.names)
        is_own = ds.field("customer_id").isin(customers)
        own = dataset.to_table(
            columns=list(OWN_COLUMNS), filter=_time_filter(names, start - config.required_history(), end) & is_own
        )
        risk = self._risk_rows(dataset, start - config.label_delay - config.risk_window, end - config.label_delay)
        others = risk.filter(pc.invert(pc.is_in(risk.column("customer_id"), value_set=customers)))
        filled = {}
        for field in own.schema:
            if field.name in others.column_names:
                filled[field.name] = others.column(field.name).cast(field.type)
            else:
                neutral = 0 if pa.types.is_integer(field.type) else ""
                filled[field.name] = pa.repeat(pa.scalar(neutral, type=field.type), others.num_rows)
        return to_frame(pa.concat_tables([own, pa.table(filled, schema=own.schema)]))


def score_batch(history: SilverHistory, batch: pa.Table, loaded: LoadedModel) -> pa.Table:
    """Scores (the batch-scoring table) of the batch's transactions, features from silver as described above."""
    times = batch.column("event_time").cast(pa.timestamp("us", tz="UTC"))
    bounds = pc.min_max(times)
    start = bounds["min"].as_py().astimezone(UTC)
    end = bounds["max"].as_py().astimezone(UTC) + timedelta(microseconds=1)
    customers = pc.unique(batch.column("customer_id").cast(pa.string()))
    frame = history.frame(customers, start, end, loaded.spec.feature_config)
    ids = pc.unique(batch.column("transaction_id").cast(pa.string()))
    target = pc.is_in(pa.array(frame["transaction_id"]).cast(pa.string()), value_set=ids)
    return score_frame(loaded.model, loaded.spec, frame, np.asarray(target.to_numpy(zero_copy_only=False)))


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
                self.tracker.settings.ml_model_name,
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
    if registry.production_version(registry.client(settings), settings.ml_model_name) is None:
        raise NoProductionModelError(
            f"the scorer needs a version of {settings.ml_model_name} with @{registry.PRODUCTION_ALIAS}; "
            "run `shoplake train` first (it deploys when the gates pass)"
        )
