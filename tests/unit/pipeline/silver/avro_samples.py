"""One valid sample transaction and its Confluent framing, shared by the streaming decode tests.

Framing goes through the production codec (:func:`shoplake.contracts.wire.encode`) so the tests build the
same bytes the producer sends.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import fastavro

from shoplake.contracts import wire

SCHEMA_FILE = Path(__file__).resolve().parents[4] / "src/shoplake/contracts/schemas/transaction-v1.avsc"
V1: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
EVENT_MS = int(dt.datetime(2026, 11, 27, 12, 0, 0, tzinfo=dt.UTC).timestamp() * 1000)


def record(**overrides: Any) -> dict[str, Any]:
    """A valid v1 transaction; keyword arguments replace fields."""
    base: dict[str, Any] = {
        "transaction_id": "tx-1",
        "event_time": EVENT_MS,
        "customer_id": "c-1",
        "merchant_id": "m-1",
        "merchant_category": "electronics",
        "merchant_country": "DE",
        "amount_cents": 12_345,
        "currency": "EUR",
        "payment_method": "card",
        "channel": "web",
        "device_id": "d-1",
        "device_type": "mobile",
        "ip_address": "10.0.0.1",
        "ip_country": "DE",
        "status": "approved",
        "is_fraud": False,
        "fraud_pattern": None,
    }
    return {**base, **overrides}


def framed(rec: dict[str, Any], schema_id: int = 1, schema: dict[str, Any] = V1) -> bytes:
    """``rec`` Avro-encoded with ``schema`` behind the Confluent header for ``schema_id``."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), rec)
    return wire.encode(schema_id, buf.getvalue())
