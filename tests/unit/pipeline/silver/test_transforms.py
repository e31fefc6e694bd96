"""The medallion's pure transforms on small DataFrames (a local SparkSession, no services)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa
import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.testing import assertDataFrameEqual

from shoplake.config import get_settings
from shoplake.pipeline.bronze import BRONZE_COLUMNS, bronze_projection
from shoplake.pipeline.silver.decode import Decoder, StaticSchemas
from shoplake.pipeline.silver.transforms import (
    QUARANTINE_COLUMNS,
    SILVER_COLUMNS,
    decode_frames,
    first_per_transaction,
    quarantine_rows,
    silver_rows,
    unseen_first_copies,
    unseen_first_copies_arrow,
    validate,
)
from shoplake.runtime.session import spark_session
from tests.unit.pipeline.silver.avro_samples import EVENT_MS, V1, framed, record

pytestmark = pytest.mark.unit

KAFKA_TS = dt.datetime(2026, 11, 27, 12, 0, 5, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield spark_session(get_settings(), app_name="shoplake-unit", shuffle_partitions=1)


def bronze_df(spark: SparkSession, values: list[bytes | None]) -> DataFrame:
    rows = [(None, v, "t", 0, i, KAFKA_TS, 0, [], KAFKA_TS, KAFKA_TS.date()) for i, v in enumerate(values)]
    schema = (
        "key binary, value binary, topic string, partition int, offset long, kafka_timestamp timestamp, "
        "kafka_timestamp_type int, headers array<struct<key:string,value:binary>>, ingested_at timestamp, "
        "event_date date"
    )
    return spark.createDataFrame(rows, schema)


def validated(spark: SparkSession, values: list[bytes | None]) -> DataFrame:
    decoder = Decoder(V1, StaticSchemas({1: V1}))
    return validate(decode_frames(bronze_df(spark, values), decoder))


def test_bronze_projection_keeps_bytes_and_metadata(spark: SparkSession) -> None:
    kafka = spark.createDataFrame(
        [(b"k", b"\x00v", "topic-a", 2, 41, KAFKA_TS, 0, [("h", b"1")])],
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, "
        "timestampType int, headers array<struct<key:string,value:binary>>",
    )
    out = bronze_projection(kafka)
    assert tuple(out.columns) == BRONZE_COLUMNS
    expected = spark.createDataFrame(
        [(b"k", b"\x00v", "topic-a", 2, 41, KAFKA_TS, 0, [("h", b"1")], KAFKA_TS.date())],
        "key binary, value binary, topic string, partition int, offset long, kafka_timestamp timestamp, "
        "kafka_timestamp_type int, headers array<struct<key:string,value:binary>>, event_date date",
    )
    assertDataFrameEqual(out.drop("ingested_at"), expected)
    assert out.where("ingested_at is null").count() == 0


def test_valid_record_becomes_one_typed_silver_row(spark: SparkSession) -> None:
    rows = validated(spark, [framed(record(fraud_pattern="card_testing", is_fraud=True))])
    assert quarantine_rows(rows).count() == 0
    silver = silver_rows(rows)
    assert tuple(silver.columns) == SILVER_COLUMNS
    expected = Row(
        transaction_id="tx-1",
        event_time=dt.datetime(2026, 11, 27, 12, 0, 0),
        event_date=dt.date(2026, 11, 27),
        event_hour=12,
        customer_id="c-1",
        merchant_id="m-1",
        merchant_category="electronics",
        merchant_country="DE",
        amount_cents=12_345,
        amount=Decimal("123.450"),
        currency="EUR",
        payment_method="card",
        channel="web",
        device_id="d-1",
        device_type="mobile",
        ip_address="10.0.0.1",
        ip_country="DE",
        status="approved",
        is_fraud=True,
        fraud_pattern="card_testing",
        schema_id=1,
        kafka_topic="t",
        kafka_partition=0,
        kafka_offset=0,
        kafka_timestamp=KAFKA_TS.replace(tzinfo=None),
        ingested_at=KAFKA_TS.replace(tzinfo=None),
    )
    assertDataFrameEqual(silver, [expected])


def test_amount_is_minor_units_over_the_reference_exponent(spark: SparkSession) -> None:
    rows = validated(
        spark,
        [
            framed(record(transaction_id="a", currency="EUR", amount_cents=1505)),
            framed(record(transaction_id="b", currency="JPY", amount_cents=1500)),  # ISO, but not a reference code
        ],
    )
    got = {r.transaction_id: r.amount for r in silver_rows(rows).collect()}
    assert got == {"a": Decimal("15.050")}
    assert [r.reason for r in quarantine_rows(rows).collect()] == ["invalid_currency"]


def test_every_poison_kind_is_quarantined_with_its_reason(spark: SparkSession) -> None:
    good = framed(record())
    values: list[bytes | None] = [
        good,
        b"\x9c\x11random bytes",
        b"\x01" + good[1:],
        b"\x00\x00\x00\x03\xe7" + good[5:],
        good[:20],
        framed(record(amount_cents=0)),
        framed(record(amount_cents=-5)),
        framed(record(currency="XYZ")),
        framed(record(event_time=EVENT_MS + 2 * 3_600_000)),
        framed(record(event_time=5)),
        framed(record(customer_id=" ")),
        framed(record(payment_method="cash")),
        framed(record(status="weird")),
        framed(record(ip_country="Germany")),
        None,
    ]
    out = quarantine_rows(validated(spark, values))
    assert tuple(out.columns) == QUARANTINE_COLUMNS
    got = {r.offset: r.reason for r in out.collect()}
    assert got == {
        1: "not_avro_framed",
        2: "not_avro_framed",
        3: "unknown_schema_id",
        4: "truncated_body",
        5: "invalid_amount",
        6: "invalid_amount",
        7: "invalid_currency",
        8: "invalid_event_time",
        9: "invalid_event_time",
        10: "missing_customer_id",
        11: "invalid_payment_method",
        12: "invalid_status",
        13: "invalid_ip_country",
        14: "not_avro_framed",
    }
    kept = out.where("offset = 5").first()
    assert kept is not None
    assert kept.value == values[5]
    assert kept.transaction_id == "tx-1"
    assert kept.detail == "amount_cents=0, expected 1..1000000000"
    assert silver_rows(validated(spark, values)).count() == 1


def test_countries_and_categories_must_be_reference_codes(spark: SparkSession) -> None:
    codes = ["DE", "US", "de", "JP", "DEU", "DE\n", "D1", "ÄB", ""]
    values: list[bytes | None] = [framed(record(transaction_id=f"t{i}", ip_country=c)) for i, c in enumerate(codes)]
    got = {r.offset: r.reason for r in validated(spark, values).select("offset", "reason").collect()}
    assert got == {i: None if c in ("DE", "US") else "invalid_ip_country" for i, c in enumerate(codes)}
    categories = ["grocery", "pets", "Grocery"]
    values = [framed(record(transaction_id=f"c{i}", merchant_category=c)) for i, c in enumerate(categories)]
    got = {r.offset: r.reason for r in validated(spark, values).select("offset", "reason").collect()}
    assert got == {0: None, 1: "invalid_merchant_category", 2: "invalid_merchant_category"}


def test_detail_describes_the_first_failed_rule_and_is_null_for_valid_rows(spark: SparkSession) -> None:
    values: list[bytes | None] = [
        framed(record()),
        framed(record(currency="XYZ", channel="fax")),
        framed(record(merchant_country="Germany")),
    ]
    got = [(r.reason, r.detail) for r in validated(spark, values).orderBy("offset").collect()]
    assert got == [
        (None, None),
        ("invalid_currency", "currency=XYZ is not a reference code (dbt/seeds/currency_rates.csv)"),
        ("invalid_merchant_country", "merchant_country=Germany is not a reference code (dbt/seeds/countries.csv)"),
    ]


def test_first_per_transaction_keeps_the_earliest_copy(spark: SparkSession) -> None:
    rows = validated(
        spark,
        [
            framed(record(transaction_id="a", amount_cents=1)),
            framed(record(transaction_id="b")),
            framed(record(transaction_id="a", amount_cents=2)),
        ],
    )
    out = first_per_transaction(silver_rows(rows)).select("transaction_id", "amount_cents", "kafka_offset")
    assertDataFrameEqual(
        out,
        [
            Row(transaction_id="a", amount_cents=1, kafka_offset=0),
            Row(transaction_id="b", amount_cents=12_345, kafka_offset=1),
        ],
    )


def test_unseen_first_copies_drops_stored_ids_and_later_copies_in_spark_and_arrow(spark: SparkSession) -> None:
    """Both versions keep the first copy of each id the store lacks - the same rows (checked against each other)."""
    rows = silver_rows(
        validated(
            spark,
            [
                framed(record(transaction_id="a", amount_cents=1)),
                framed(record(transaction_id="b")),
                framed(record(transaction_id="a", amount_cents=2)),
                framed(record(transaction_id="c")),
                framed(record(transaction_id="c", amount_cents=3)),
            ],
        )
    )
    stored = pa.array(["b", "z"])
    spark_kept = unseen_first_copies(rows, spark.createDataFrame(pa.table({"transaction_id": stored})))
    arrow_kept = unseen_first_copies_arrow(rows.toArrow(), stored)
    assert sorted(arrow_kept.select(["transaction_id", "amount_cents", "kafka_offset"]).to_pylist(), key=str) == [
        {"transaction_id": "a", "amount_cents": 1, "kafka_offset": 0},
        {"transaction_id": "c", "amount_cents": 12_345, "kafka_offset": 3},
    ]
    assert sorted(arrow_kept.to_pylist(), key=str) == sorted(spark_kept.toArrow().to_pylist(), key=str)


def test_unseen_first_copies_arrow_orders_by_kafka_time_then_position() -> None:
    late, early = dt.datetime(2026, 11, 27, 12, 0, 9, tzinfo=dt.UTC), KAFKA_TS
    table = pa.table(
        {
            "transaction_id": ["a", "a", "b", "b", "c"],
            "kafka_timestamp": [late, early, early, early, early],
            "kafka_topic": ["t", "t", "t", "t", "t"],
            "kafka_partition": [0, 1, 1, 0, 0],
            "kafka_offset": [1, 7, 2, 5, 3],
        }
    )
    kept = unseen_first_copies_arrow(table, pa.array(["c"]))
    assert kept.select(["transaction_id", "kafka_partition", "kafka_offset"]).to_pylist() == [
        {"transaction_id": "a", "kafka_partition": 1, "kafka_offset": 7},
        {"transaction_id": "b", "kafka_partition": 0, "kafka_offset": 5},
    ]
    assert unseen_first_copies_arrow(table.slice(0, 0), pa.array(["c"])).num_rows == 0
