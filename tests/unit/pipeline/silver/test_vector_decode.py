"""The vectorised decoder must decode exactly like the per-record one: same rows, values, reasons, order."""

from __future__ import annotations

import struct
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoplake.pipeline.silver.decode import Decoder, StaticSchemas
from shoplake.pipeline.silver.vector_decode import candidate_ids, decode_values, plan
from tests.unit.pipeline.silver.avro_samples import V1, framed, record

pytestmark = pytest.mark.unit

V2: dict[str, Any] = {
    **V1,
    "fields": [*V1["fields"], {"name": "coupon", "type": ["null", "string"], "default": None}],
}
# Every primitive the fast path reads, nullable or not, in both union orders.
WIDE: dict[str, Any] = {
    "type": "record",
    "name": "Wide",
    "fields": [
        {"name": "s", "type": "string"},
        {"name": "b", "type": "bytes"},
        {"name": "l", "type": "long"},
        {"name": "i", "type": "int"},
        {"name": "t", "type": "boolean"},
        {"name": "d", "type": "double"},
        {"name": "f", "type": "float"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ns", "type": ["null", "string"], "default": None},
        {"name": "nl", "type": ["long", "null"], "default": 0},
    ],
}


def both(decoder: Decoder, messages: list[bytes | None]) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    batch = pa.RecordBatch.from_pydict({"offset": list(range(len(messages))), "value": pa.array(messages, pa.binary())})
    return stable(decoder.decode_batch(batch)), stable(decoder.decode_rows(batch))


def stable(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Without the object addresses fastavro's EOF messages carry (they differ between two decodes)."""
    i = batch.schema.get_field_index("decode_detail")
    details = pc.replace_substring_regex(batch.column(i), r"at 0x[0-9a-f]+", "at 0x")
    return batch.set_column(i, batch.schema.field(i), details)


def bad_utf8(rec: dict[str, Any]) -> bytes:
    good = framed({**rec, "transaction_id": "ab"})
    return good.replace(b"\x04ab", b"\x04\xff\xfe", 1)


EDGE_CASES: list[bytes | None] = [
    *(framed(record(transaction_id=f"tx-{i}", amount_cents=100 + i * 977)) for i in range(12)),
    framed(record(transaction_id="tx-pattern", is_fraud=True, fraud_pattern="card_testing")),
    framed(record(transaction_id="tx-zürich", merchant_category="café")),  # valid UTF-8, not ASCII
    framed(record(transaction_id="", amount_cents=-(2**63))),
    framed(record(transaction_id="tx-max", amount_cents=2**63 - 1, event_time=0)),
    framed(record(transaction_id="tx-truncated"))[:-3],
    framed(record(transaction_id="tx-trailing")) + b"\x00\x00",
    framed(record(transaction_id="tx-unknown"), 77),
    framed({**record(transaction_id="tx-newer"), "coupon": "X"}, 2, V2),
    bad_utf8(record()),
    b"\x01" + framed(record())[1:],
    b"\x00\x00\x00\x00\x01",
    b"\x00\xff\xff\xff\xff" + framed(record())[5:],
    b"abc",
    b"",
    None,
]


def test_fast_and_per_record_decoding_agree_on_edge_cases() -> None:
    decoder = Decoder(V1, StaticSchemas({1: V1, 2: V2}))
    fast, reference = both(decoder, EDGE_CASES)
    assert fast.schema == reference.schema
    assert fast.equals(reference)
    reasons = {r["decode_error"] for r in fast.to_pylist()}
    assert {None, "truncated_body", "trailing_bytes", "unknown_schema_id", "corrupt_body", "not_avro_framed"} <= reasons


def test_fast_path_really_decodes_the_well_formed_ascii_records() -> None:
    """Guards the speed-up itself: the plain records must not all fall back to the per-record path."""
    values = pa.array(EDGE_CASES, pa.binary())
    decoded = decode_values(values, plan(V1) or [], frozenset({1}))
    assert decoded.ok.tolist() == [True] * 13 + [False] + [True] * 2 + [False] * 11
    assert candidate_ids(values) == {1, 2, 77, 2**32 - 1}


def test_every_supported_type_in_both_union_orders() -> None:
    rows = [
        {
            "s": "x",
            "b": b"\x00\xff",
            "l": -1,
            "i": 2**31 - 1,
            "t": True,
            "d": 1.5,
            "f": -2.25,
            "ts": 1,
            "ns": None,
            "nl": 7,
        },
        {"s": "", "b": b"", "l": 2**40, "i": -(2**31), "t": False, "d": -0.0, "f": 3.0, "ts": 0, "ns": "y", "nl": None},
    ]
    messages: list[bytes | None] = [framed(r, 9, WIDE) for r in rows]
    messages.append(framed(rows[0], 9, WIDE)[:-1] + b"\x05")  # a union branch that does not exist
    messages.append(framed(rows[1], 9, WIDE).replace(b"\x00\x00\x00\x00\x00\x00\x00\x80", b"\x00" * 8, 1))
    decoder = Decoder(WIDE, StaticSchemas({9: WIDE}))
    fast, reference = both(decoder, messages)
    assert fast.equals(reference)
    assert fast.slice(0, 2).to_pylist() == reference.slice(0, 2).to_pylist()
    assert fast.column("s").to_pylist()[:2] == ["x", ""]


def test_sliced_and_large_binary_input() -> None:
    decoder = Decoder(V1, StaticSchemas({1: V1}))
    batch = pa.RecordBatch.from_pydict({"value": pa.array(EDGE_CASES * 2, pa.binary())}).slice(7, 20)
    assert stable(decoder.decode_batch(batch)).equals(stable(decoder.decode_rows(batch)))
    large = pa.RecordBatch.from_pydict({"value": pa.array(EDGE_CASES, pa.large_binary())})
    assert stable(decoder.decode_batch(large)).equals(stable(decoder.decode_rows(large)))


def test_schemas_beyond_the_fast_path_fall_back_to_per_record_decoding() -> None:
    nested = {**V1, "fields": [*V1["fields"], {"name": "tags", "type": {"type": "array", "items": "string"}}]}
    assert plan(nested) is None
    assert plan({"type": "string"}) is None
    assert plan({**V1, "fields": [{"name": "u", "type": ["null", "string", "long"]}]}) is None


def varint_bytes(value: int) -> bytes:
    """Zig-zag varint of a long, written by hand so the test does not share code with the decoder."""
    z = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = z & 0x7F
        z >>= 7
        if z:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@pytest.mark.parametrize("value", [0, -1, 63, -64, 64, 2**31, -(2**31) - 1, 2**62, 2**63 - 1, -(2**63)])
def test_long_varints_of_every_length(value: int) -> None:
    schema = {"type": "record", "name": "L", "fields": [{"name": "l", "type": "long"}]}
    message = b"\x00" + struct.pack(">I", 3) + varint_bytes(value)
    decoder = Decoder(schema, StaticSchemas({3: schema}))
    fast, reference = both(decoder, [message])
    assert fast.equals(reference)
    assert fast.column("l").to_pylist() == [value]
    overlong = b"\x00" + struct.pack(">I", 3) + b"\xff" * 9 + b"\x02"  # an 11th bit pattern past 64 bits
    assert not decode_values(pa.array([overlong], pa.binary()), plan(schema) or [], frozenset({3})).ok[0]


VALID = framed(record())


@st.composite
def mutated_frame(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))]) + draw(st.binary(max_size=8))


@given(st.lists(st.one_of(st.none(), st.binary(max_size=48), mutated_frame(), st.just(VALID)), max_size=60))
@settings(max_examples=150, deadline=None)
def test_fuzzed_batches_decode_identically(messages: list[bytes | None]) -> None:
    fast, reference = both(Decoder(V1, StaticSchemas({1: V1})), messages)
    assert fast.equals(reference)
