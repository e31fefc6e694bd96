"""Fuzzing the decoder with malformed Kafka payloads: nothing may crash, every message gets exactly one fate.

The stream only survives poison if the decoder turns every byte string into either a record or a reason
code; one exception inside ``mapInArrow`` fails the whole micro-batch, and a failed batch is retried
forever. Hypothesis throws arbitrary bytes, broken Confluent headers (including schema ids that do not fit
Avro's signed 32-bit id) and bit-flipped, cut and extended valid frames at the Python decoder, then a
bounded batch of the same through the Spark path (vectorised decode + per-record fallback + validation) to check
that each message ends up in silver or in quarantine with a reason, never in both and never nowhere.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from shoplake.config import get_settings
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
from shoplake.pipeline.silver.transforms import decode_frames, quarantine_rows, silver_rows, validate
from shoplake.runtime.session import spark_session
from tests.unit.pipeline.silver.avro_samples import V1, framed, record
from tests.unit.pipeline.silver.test_transforms import bronze_df

pytestmark = pytest.mark.unit

DECODE_REASONS = frozenset(
    {NOT_AVRO_FRAMED, UNKNOWN_SCHEMA_ID, TRUNCATED_BODY, CORRUPT_BODY, TRAILING_BYTES, INCOMPATIBLE_SCHEMA}
)
# A writer schema that is not a record: a frame naming it must be refused, not crash the column builder.
NOT_A_RECORD: dict[str, Any] = {"type": "string"}
SCHEMAS = StaticSchemas({1: V1, 5: NOT_A_RECORD})
VALID = framed(record())


def header(schema_id: int) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id)


@st.composite
def mutated_frame(draw: st.DrawFn) -> bytes:
    """A valid v1 frame with a few bytes flipped, then cut short or extended."""
    data = bytearray(VALID)
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    tail = draw(st.binary(max_size=8))
    return bytes(data[:cut]) + tail


payloads: st.SearchStrategy[bytes | None] = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.builds(lambda sid, body: header(sid) + body, st.integers(0, 2**32 - 1), st.binary(max_size=64)),
    st.builds(lambda sid, body: header(sid) + body, st.sampled_from([1, 5]), st.binary(max_size=64)),
    mutated_frame(),
)


@given(payloads)
@settings(max_examples=600, deadline=None)
def test_any_payload_gives_a_record_or_a_reason_never_an_exception(message: bytes | None) -> None:
    decoder = Decoder(V1, SCHEMAS)
    schema_id, rec, reason, detail = decoder.decode(message)
    assert (rec is None) != (reason is None)
    if reason is not None:
        assert reason in DECODE_REASONS
        assert detail
    else:
        assert rec is not None and set(rec) == {f["name"] for f in V1["fields"]}
    assert schema_id is None or 0 <= schema_id < 2**31


@given(st.lists(payloads, min_size=1, max_size=40))
@settings(max_examples=150, deadline=None)
def test_any_batch_decodes_into_columns_without_raising(messages: list[bytes | None]) -> None:
    batch = pa.RecordBatch.from_pydict({"value": pa.array(messages, pa.binary())})
    out = Decoder(V1, SCHEMAS).decode_batch(batch)
    assert out.num_rows == len(messages)
    rows = out.to_pylist()
    assert all((r["decode_error"] is None) == (r["transaction_id"] is not None) for r in rows)


def test_schema_id_beyond_int32_is_an_unknown_id_not_a_registry_lookup() -> None:
    """Confluent ids are signed 32-bit; a larger one cannot exist and must not reach the Arrow int32 column."""

    class Refuses:
        def writer_schema(self, schema_id: int) -> dict[str, Any] | None:
            raise AssertionError(f"looked up impossible id {schema_id}")

    message = header(2**32 - 1) + VALID[5:]
    schema_id, rec, reason, detail = Decoder(V1, Refuses()).decode(message)
    assert (schema_id, rec, reason) == (None, None, UNKNOWN_SCHEMA_ID)
    assert detail is not None and "4294967295" in detail


def test_writer_schema_that_is_not_a_record_is_incompatible() -> None:
    _, rec, reason, _ = Decoder(V1, SCHEMAS).decode(header(5) + b"\x06abc")
    assert (rec, reason) == (None, INCOMPATIBLE_SCHEMA)


# ---- the Spark path: one bounded batch of hypothesis-drawn poison through decode + validate --------------
@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield spark_session(get_settings(), app_name="shoplake-unit-fuzz", shuffle_partitions=1)


@given(st.lists(payloads, min_size=40, max_size=120), st.integers(1, 20))
@settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_fuzzed_message_lands_in_silver_or_quarantine_with_a_reason(
    spark: SparkSession, poison: list[bytes | None], n_valid: int
) -> None:
    valid = [framed(record(transaction_id=f"fz-{i}")) for i in range(n_valid)]
    messages = [*valid, *poison]
    decoder = Decoder(V1, SCHEMAS)
    bronze = bronze_df(spark, messages)
    checked = validate(decode_frames(bronze, decoder)).cache()
    try:
        rows = checked.select("offset", "reason", "detail", "decode_error").orderBy("offset").collect()
        assert [r.offset for r in rows] == list(range(len(messages)))  # none lost, none doubled
        quarantined = {r.offset for r in quarantine_rows(checked).select("offset").collect()}
        assert quarantined == {r.offset for r in rows if r.reason is not None}
        assert all(r.detail for r in rows if r.reason is not None)
        # the silver projection (casts, timestamps, amounts) survives whatever decoded
        assert silver_rows(checked).count() == len(messages) - len(quarantined)
        assert not set(range(n_valid)) & quarantined  # poison never takes valid neighbours down with it
        # the batch path labels exactly what the per-record decoder labels
        assert [r.decode_error for r in rows] == [decoder.decode(m)[2] for m in messages]
    finally:
        checked.unpersist()
