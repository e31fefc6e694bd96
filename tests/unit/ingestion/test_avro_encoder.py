"""The vectorised Avro encoder must produce exactly fastavro's bytes, framed like wire.encode."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import fastavro
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shoplake.contracts import schemas, wire
from shoplake.ingestion import vocab
from shoplake.ingestion.avro_encoder import encode_batch, zigzag_varints
from shoplake.ingestion.generator import GeneratorConfig, TransactionBatch, generate

pytestmark = pytest.mark.unit


def _fastavro_framed(schema_id: int, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schemas.parsed_schema(), record)
    return wire.encode(schema_id, out.getvalue())


def _assert_same_as_fastavro(batch: TransactionBatch, schema_id: int) -> None:
    encoded = encode_batch(batch, schema_id)
    records = batch.to_records()
    messages = encoded.messages()
    assert len(messages) == len(records) == len(encoded)
    for message, record, key in zip(messages, records, encoded.keys(), strict=True):
        assert message == _fastavro_framed(schema_id, record)
        assert key == record["customer_id"].encode()


def test_generated_chunk_matches_fastavro_byte_for_byte() -> None:
    config = GeneratorConfig(chunk_size=3_000)
    batches = list(generate(6_000, 11, datetime(2026, 3, 1, tzinfo=UTC), "enc-test", config=config))
    for batch in batches:
        assert batch.is_fraud.any()  # both union branches of fraud_pattern are exercised
        _assert_same_as_fastavro(batch, schema_id=123_456)


@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50))
def test_zigzag_varints_match_avro_long_encoding(values: list[int]) -> None:
    mat, lens = zigzag_varints(np.array(values, dtype=np.int64))
    for i, value in enumerate(values):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, "long", value)
        assert bytes(mat[i, : lens[i]]) == out.getvalue()


def _codes(n: int, size: int) -> Any:
    return hnp.arrays(np.int8, n, elements=st.integers(0, size - 1))


@st.composite
def batches(draw: st.DrawFn) -> TransactionBatch:
    """Arbitrary column values within the encoder's documented domain (including extreme longs)."""
    n = draw(st.integers(1, 25))
    longs = hnp.arrays(np.int64, n, elements=st.integers(-(2**63), 2**63 - 1))
    patterns = draw(_codes(n, len(vocab.FRAUD_PATTERNS)))
    first = draw(st.integers(0, 10**12 - 1 - n))
    return TransactionBatch(
        run_prefix=draw(st.text("0123456789abcdef", min_size=16, max_size=16)),
        seq=np.arange(first, first + n, dtype=np.int64),
        event_time_ms=draw(longs),
        customer=draw(hnp.arrays(np.int64, n, elements=st.integers(0, 10**8 - 1))),
        merchant=draw(hnp.arrays(np.int64, n, elements=st.integers(0, 10**6 - 1))),
        merchant_category=draw(_codes(n, len(vocab.CATEGORIES))),
        merchant_country=draw(_codes(n, len(vocab.COUNTRIES))),
        amount_cents=draw(longs),
        currency=draw(_codes(n, len(vocab.CURRENCIES))),
        payment_method=draw(_codes(n, len(vocab.PAYMENT_METHODS))),
        channel=draw(_codes(n, len(vocab.CHANNELS))),
        device=draw(hnp.arrays(np.uint64, n, elements=st.integers(0, 2**64 - 1))),
        device_type=draw(_codes(n, len(vocab.DEVICE_TYPES))),
        ip=draw(hnp.arrays(np.int64, n, elements=st.integers(0, 2**32 - 1))),
        ip_country=draw(_codes(n, len(vocab.COUNTRIES))),
        status=draw(_codes(n, len(vocab.STATUSES))),
        is_fraud=patterns > 0,
        fraud_pattern=patterns,
    )


@settings(max_examples=60, deadline=None)
@given(batch=batches(), schema_id=st.integers(0, wire.MAX_SCHEMA_ID))
def test_arbitrary_batches_match_fastavro(batch: TransactionBatch, schema_id: int) -> None:
    _assert_same_as_fastavro(batch, schema_id)


def test_ids_wider_than_the_fixed_format_are_refused() -> None:
    batch = next(generate(10, 1, datetime(2026, 1, 1, tzinfo=UTC), "k"))
    too_big = TransactionBatch(**{**batch.__dict__, "customer": batch.customer + 10**8})
    with pytest.raises(ValueError, match="fixed id widths"):
        encode_batch(too_big, 1)
