"""The Confluent wire-format codec and the schema loader."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoplake.contracts import schemas, wire

pytestmark = pytest.mark.unit


def _record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "transaction_id": "tx-0000000000000000-000000000001",
        "event_time": 1_767_225_600_000,
        "customer_id": "C00000001",
        "merchant_id": "M000001",
        "merchant_category": "grocery",
        "merchant_country": "US",
        "amount_cents": 1234,
        "currency": "USD",
        "payment_method": "card",
        "channel": "web",
        "device_id": "dev-0123456789abcdef",
        "device_type": "desktop",
        "ip_address": "10.0.0.1",
        "ip_country": "US",
        "status": "approved",
        "is_fraud": False,
        "fraud_pattern": None,
    }
    record.update(overrides)
    return record


def _avro(record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schemas.parsed_schema(), record)
    return out.getvalue()


@given(schema_id=st.integers(0, wire.MAX_SCHEMA_ID), payload=st.binary(min_size=1, max_size=300))
def test_encode_decode_round_trip(schema_id: int, payload: bytes) -> None:
    framed = wire.encode(schema_id, payload)
    assert framed[0] == 0 and len(framed) == 5 + len(payload)
    assert wire.decode(framed) == (schema_id, payload)


def test_header_is_magic_byte_then_big_endian_id() -> None:
    assert wire.encode(258, b"x") == b"\x00\x00\x00\x01\x02x"


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        (b"", "empty message"),
        (None, "empty message"),
        (b"\x00\x00\x01", "too short"),
        (b"\x01\x00\x00\x00\x01abc", "wrong magic byte 0x01"),
        (b"\x00\x00\x00\x00\x07", "no Avro body"),
    ],
)
def test_decode_rejects_malformed_messages(message: bytes | None, fragment: str) -> None:
    with pytest.raises(wire.WireFormatError, match=fragment):
        wire.decode(message)


@pytest.mark.parametrize("schema_id", [-1, 2**31, True, "1"])
def test_encode_rejects_invalid_schema_ids(schema_id: Any) -> None:
    with pytest.raises(wire.WireFormatError, match="schema id"):
        wire.encode(schema_id, b"body")


def test_encode_rejects_empty_body() -> None:
    with pytest.raises(wire.WireFormatError, match="empty Avro body"):
        wire.encode(1, b"")


def test_decode_record_returns_the_record() -> None:
    record = _record(is_fraud=True, fraud_pattern="card_testing")
    schema_id, decoded = wire.decode_record(wire.encode(9, _avro(record)), schemas.parsed_schema())
    assert schema_id == 9
    assert decoded["fraud_pattern"] == "card_testing"
    assert decoded["amount_cents"] == 1234


@pytest.mark.parametrize("cut", [1, 5, 20])
def test_decode_record_rejects_truncated_body(cut: int) -> None:
    framed = wire.encode(1, _avro(_record()))
    with pytest.raises(wire.WireFormatError, match="truncated Avro body"):
        wire.decode_record(framed[:-cut], schemas.parsed_schema())


def test_decode_record_rejects_trailing_bytes() -> None:
    framed = wire.encode(1, _avro(_record()) + b"\x00\x00")
    with pytest.raises(wire.WireFormatError, match="trailing bytes"):
        wire.decode_record(framed, schemas.parsed_schema())


def test_schema_file_loads_with_expected_fields() -> None:
    names = schemas.field_names()
    assert names[0] == "transaction_id"
    assert {"is_fraud", "fraud_pattern", "amount_cents", "event_time"} <= set(names)
    assert schemas.schema_dict()["namespace"] == "ecommerce"


def test_unknown_schema_name_is_a_clear_error() -> None:
    with pytest.raises(schemas.SchemaFileError, match="available: transaction-v1"):
        schemas.schema_path("transaction-v9")
