"""Fill PostgreSQL ``raw.transactions`` the way the pipeline does, for the warehouse tests and benchmark.

Rows come from the ingestion generator (the same seeded world the platform streams) and are written with
the streaming sink's own ``ensure_table`` + ``upsert`` (the real DDL and keyed upsert), so dbt sees
exactly the table shape and load semantics it gets in production. The silver-only lineage columns (Kafka
topic/partition/offset, schema id) are filled as the stream would fill them for one partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from shoplake.config import Settings
from shoplake.ingestion.generator import GeneratorConfig, TransactionBatch, generate
from shoplake.pipeline.sinks.postgres import WarehouseTable, ensure_table, upsert


def raw_table(settings: Settings) -> WarehouseTable:
    return WarehouseTable(settings.postgres.dsn(), "raw", "transactions")


Columns = dict[str, list[Any]]


def silver_rows(cols: Columns, topic: str, first_offset: int) -> pa.Table:
    """One generator batch (its contract columns) as the silver columns the sink writes."""
    n = len(cols["transaction_id"])
    event_time = pa.array(cols["event_time"], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    event_dt = [datetime.fromtimestamp(ms / 1000, UTC) for ms in cols["event_time"]]
    now = datetime.now(UTC)
    return pa.table(
        {
            "transaction_id": cols["transaction_id"],
            "event_time": event_time,
            "event_date": pa.array([t.date() for t in event_dt], pa.date32()),
            "event_hour": pa.array([t.hour for t in event_dt], pa.int16()),
            "customer_id": cols["customer_id"],
            "merchant_id": cols["merchant_id"],
            "merchant_category": cols["merchant_category"],
            "merchant_country": cols["merchant_country"],
            "amount_cents": pa.array(cols["amount_cents"], pa.int64()),
            "amount": pa.array([Decimal(c) / 100 for c in cols["amount_cents"]], pa.decimal128(18, 3)),
            "currency": cols["currency"],
            "payment_method": cols["payment_method"],
            "channel": cols["channel"],
            "device_id": cols["device_id"],
            "device_type": cols["device_type"],
            "ip_address": cols["ip_address"],
            "ip_country": cols["ip_country"],
            "status": cols["status"],
            "is_fraud": pa.array(cols["is_fraud"], pa.bool_()),
            "fraud_pattern": pa.array(cols["fraud_pattern"], pa.string()),
            "schema_id": pa.array([1] * n, pa.int32()),
            "kafka_topic": [topic] * n,
            "kafka_partition": pa.array([0] * n, pa.int32()),
            "kafka_offset": pa.array(range(first_offset, first_offset + n), pa.int64()),
            "kafka_timestamp": event_time,
            "ingested_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        }
    )


@dataclass
class LoadedRows:
    """What was loaded, summed independently of the warehouse (the reconciliation reference)."""

    count: int = 0
    amount_cents: int = 0
    fraud: int = 0
    by_currency_approved_cents: dict[str, list[int]] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)
    merchants: set[str] = field(default_factory=set)

    def add(self, cols: Columns) -> None:
        self.count += len(cols["transaction_id"])
        self.amount_cents += sum(cols["amount_cents"])
        self.fraud += sum(cols["is_fraud"])
        self.customers.update(cols["customer_id"])
        self.merchants.update(cols["merchant_id"])
        for status, currency, cents in zip(cols["status"], cols["currency"], cols["amount_cents"], strict=True):
            if status == "approved":
                self.by_currency_approved_cents.setdefault(currency, []).append(cents)


def batches(n: int, run_key: str, *, seed: int = 7, days: float = 20.0) -> Iterator[TransactionBatch]:
    """``n`` transactions spread over the ``days`` before now (never in the future)."""
    start = datetime.now(UTC) - timedelta(days=days + 1)
    config = GeneratorConfig(n_customers=20_000, n_merchants=2_000)
    return generate(n, seed, start, run_key, span=timedelta(days=days), config=config)


def load(
    settings: Settings, n: int, run_key: str, *, first_offset: int = 0, days: float = 20.0, seed: int = 7
) -> LoadedRows:
    """Generate ``n`` transactions of world ``seed`` and upsert them into raw.transactions."""
    target = raw_table(settings)
    ensure_table(target)
    loaded = LoadedRows()
    offset = first_offset
    for batch in batches(n, run_key, seed=seed, days=days):
        cols = batch.to_columns()
        upsert(target, silver_rows(cols, settings.kafka.topic, offset))
        loaded.add(cols)
        offset += len(batch)
    return loaded
