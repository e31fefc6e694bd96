"""Decoding Confluent-framed Avro: every kind of poison gets its own reason, evolution resolves both ways."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest

from shoplake.pipeline.silver.decode import (
    CORRUPT_BODY,
    INCOMPATIBLE_SCHEMA,
    NOT_AVRO_FRAMED,
    TRAILING_BYTES,
    TRUNCATED_BODY,
    UNKNOWN_SCHEMA_ID,
    Decoder,
    StaticSchemas,
)
from tests.unit.pipeline.silver.avro_samples import SCHEMA_FILE, V1, framed, record

pytestmark = pytest.mark.unit


def v2_schema() -> dict[str, Any]:
    """A BACKWARD-compatible evolution: one new field with a default."""
    schema = json.loads(SCHEMA_FILE.read_text())
    schema["fields"].append({"name": "loyalty_tier", "type": "string", "default": "none"})
    return schema


@pytest.fixture
def decoder() -> Decoder:
    return Decoder(V1, StaticSchemas({1: V1, 2: v2_schema()}))


def test_valid_message_decodes_with_event_time_as_epoch_millis(decoder: Decoder) -> None:
    sent = record(event_time=1_764_000_000_123)  # a non-round millisecond survives the round trip
    schema_id, rec, reason, detail = decoder.decode(framed(sent))
    assert (schema_id, reason, detail) == (1, None, None)
    assert rec == sent


def test_newer_writer_is_read_with_the_reader_schema(decoder: Decoder) -> None:
    """A v2 producer's extra field is dropped; the v1 fields come through intact."""
    _, rec, reason, _ = decoder.decode(framed({**record(), "loyalty_tier": "gold"}, 2, v2_schema()))
    assert reason is None
    assert rec == record()


def test_older_writer_gets_defaults_for_new_reader_fields() -> None:
    decoder = Decoder(v2_schema(), StaticSchemas({1: V1}))
    _, rec, reason, _ = decoder.decode(framed(record()))
    assert reason is None
    assert rec == {**record(), "loyalty_tier": "none"}


@pytest.mark.parametrize(
    ("message", "reason", "detail_part"),
    [
        (None, NOT_AVRO_FRAMED, "no value"),
        (b"\x00\x00\x01", NOT_AVRO_FRAMED, "3 bytes"),
        (b'{"json": true}', NOT_AVRO_FRAMED, "magic byte 0x7b"),
        (b"\x00\x00\x00\x00\x63" + b"abc", UNKNOWN_SCHEMA_ID, "schema id 99"),
        (b"\x00\x00\x00\x00\x01", TRUNCATED_BODY, "header only"),
    ],
)
def test_framing_poison_is_labelled(decoder: Decoder, message: bytes | None, reason: str, detail_part: str) -> None:
    _, rec, got, detail = decoder.decode(message)
    assert rec is None
    assert got == reason
    assert detail is not None and detail_part in detail


def test_truncated_body_is_labelled(decoder: Decoder) -> None:
    message = framed(record())
    _, rec, reason, _ = decoder.decode(message[: len(message) - 7])
    assert (rec, reason) == (None, TRUNCATED_BODY)


def test_trailing_bytes_are_labelled(decoder: Decoder) -> None:
    _, rec, reason, detail = decoder.decode(framed(record()) + b"\x02\x03")
    assert (rec, reason) == (None, TRAILING_BYTES)
    assert detail == "2 bytes left after the record"


def test_garbage_body_with_valid_header_is_corrupt_or_truncated(decoder: Decoder) -> None:
    # 0xff... is a huge varint string length followed by invalid UTF-8: fastavro cannot read it as a record.
    _, rec, reason, _ = decoder.decode(b"\x00\x00\x00\x00\x01" + b"\x02\xff\xfe" + b"\x00" * 40)
    assert rec is None
    assert reason in (CORRUPT_BODY, TRUNCATED_BODY, TRAILING_BYTES)


def test_writer_missing_a_reader_field_without_default_is_incompatible() -> None:
    writer = json.loads(SCHEMA_FILE.read_text())
    writer["fields"] = [f for f in writer["fields"] if f["name"] != "channel"]
    rec = {k: v for k, v in record().items() if k != "channel"}
    decoder = Decoder(V1, StaticSchemas({7: writer}))
    _, out, reason, _ = decoder.decode(framed(rec, 7, writer))
    assert (out, reason) == (None, INCOMPATIBLE_SCHEMA)


def test_decode_batch_keeps_input_columns_and_adds_typed_fields(decoder: Decoder) -> None:
    good = framed(record(fraud_pattern="card_testing", is_fraud=True))
    batch = pa.RecordBatch.from_pydict(
        {"value": pa.array([good, b"junk"], pa.binary()), "offset": pa.array([10, 11], pa.int64())}
    )
    out = decoder.decode_batch(batch)
    assert out.schema.names[:5] == ["value", "offset", "schema_id", "decode_error", "decode_detail"]
    assert out.schema.field("event_time").type == pa.int64()
    assert out.schema.field("is_fraud").type == pa.bool_()
    rows = out.to_pylist()
    assert rows[0]["offset"] == 10
    assert rows[0]["decode_error"] is None
    assert rows[0]["fraud_pattern"] == "card_testing"
    assert rows[0]["amount_cents"] == 12_345
    assert rows[1]["decode_error"] == NOT_AVRO_FRAMED
    assert rows[1]["transaction_id"] is None
