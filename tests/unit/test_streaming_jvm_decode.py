"""The JVM fast path must decode exactly like the Python decoder: same rows, same columns, same reasons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from shoplake.config import get_settings
from shoplake.streaming.decode import Decoder, StaticSchemas
from shoplake.streaming.jvm_decode import decode_frames_fast
from shoplake.streaming.session import spark_session
from shoplake.streaming.transforms import decode_frames

from .avro_samples import V1, framed, record
from .test_streaming_transforms import bronze_df

pytestmark = pytest.mark.unit

V2: dict[str, Any] = {
    **V1,
    "fields": [*V1["fields"], {"name": "coupon", "type": ["null", "string"], "default": None}],
}


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield spark_session(get_settings(), app_name="shoplake-unit", shuffle_partitions=1)


def framed_v2(rec: dict[str, Any], schema_id: int) -> bytes:
    return framed({**rec, "coupon": "X"}, schema_id, V2)


def bad_utf8(rec: dict[str, Any]) -> bytes:
    """A record whose transaction_id bytes are not UTF-8 (Java would decode them as U+FFFD)."""
    good = framed({**rec, "transaction_id": "ab"})
    return good.replace(b"\x04ab", b"\x04\xff\xfe", 1)


MESSAGES: list[bytes | None] = [
    *(framed(record(transaction_id=f"tx-{i}", amount_cents=100 + i)) for i in range(20)),
    framed(record(transaction_id="tx-pattern", is_fraud=True, fraud_pattern="card_testing")),
    framed(record(transaction_id="tx-truncated"))[:-3],
    framed(record(transaction_id="tx-trailing")) + b"\x00\x00",
    framed(record(transaction_id="tx-unknown"), 77),
    framed_v2(record(transaction_id="tx-newer"), 2),
    bad_utf8(record()),
    b"\x01" + framed(record())[1:],
    b"\x00\x00\x00\x00\x01",
    b"abc",
    None,
]


def test_fast_path_matches_python_decoder_row_for_row(spark: SparkSession) -> None:
    decoder = Decoder(V1, StaticSchemas({1: V1, 2: V2}))
    bronze = bronze_df(spark, MESSAGES)
    expected = decode_frames(bronze, decoder)
    got = decode_frames_fast(bronze, decoder)
    assert got.columns == expected.columns
    assertDataFrameEqual(got, expected)
    reasons = {r.decode_error for r in got.collect()}
    assert {None, "truncated_body", "trailing_bytes", "unknown_schema_id", "corrupt_body", "not_avro_framed"} <= reasons


def test_batch_without_reader_schema_ids_uses_the_python_path_only(spark: SparkSession) -> None:
    decoder = Decoder(V1, StaticSchemas({2: V2}))
    bronze = bronze_df(spark, [framed_v2(record(), 2), b"abc"])
    assertDataFrameEqual(decode_frames_fast(bronze, decoder), decode_frames(bronze, decoder))
