"""Gold aggregates on small static DataFrames: what one batch of silver rows adds to each table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as sf
from pyspark.testing import assertDataFrameEqual

from shoplake.config import get_settings
from shoplake.pipeline.gold import GOLD_TABLES, GoldTable
from shoplake.runtime.session import spark_session

pytestmark = pytest.mark.unit

H = dt.datetime(2026, 11, 27, 10, 0, 0)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield spark_session(get_settings(), app_name="shoplake-unit", shuffle_partitions=1)


def silver(spark: SparkSession) -> DataFrame:
    rows = [
        # event_time, customer, merchant, category, country, currency, amount, fraud, device, ip_country
        (H.replace(minute=5), "c1", "m1", "grocery", "US", "USD", 1_000, False, "d1", "US"),
        (H.replace(minute=30), "c1", "m2", "grocery", "US", "USD", 3_000, True, "d2", "NG"),
        (H.replace(minute=59), "c2", "m1", "grocery", "US", "USD", 500, False, "d3", "US"),
        (H.replace(hour=11, minute=1), "c1", "m1", "grocery", "US", "USD", 700, False, "d1", "US"),
    ]
    return spark.createDataFrame(
        rows,
        "event_time timestamp, customer_id string, merchant_id string, merchant_category string, "
        "merchant_country string, currency string, amount_cents long, is_fraud boolean, device_id string, "
        "ip_country string",
    )


TABLES = {table.name: table for table in GOLD_TABLES}


def aggregated(spark: SparkSession, name: str) -> DataFrame:
    """The table's rows for the batch, without its sketch columns (their estimates are compared instead)."""
    out = TABLES[name].aggregate(silver(spark))
    return out.drop(*(c for c in out.columns if c.endswith("_sketch")))


def test_hourly_sales_per_hour_and_dimension(spark: SparkSession) -> None:
    expected = [
        Row(
            window_start=H,
            window_end=H.replace(hour=11),
            event_date=H.date(),
            merchant_category="grocery",
            merchant_country="US",
            currency="USD",
            transactions=3,
            amount_cents=4_500,
            fraud_transactions=1,
            fraud_amount_cents=3_000,
            approx_customers=2,
        ),
        Row(
            window_start=H.replace(hour=11),
            window_end=H.replace(hour=12),
            event_date=H.date(),
            merchant_category="grocery",
            merchant_country="US",
            currency="USD",
            transactions=1,
            amount_cents=700,
            fraud_transactions=0,
            fraud_amount_cents=0,
            approx_customers=1,
        ),
    ]
    assertDataFrameEqual(aggregated(spark, "hourly_sales"), expected)


def test_customer_behaviour_counts_distinct_devices_and_countries(spark: SparkSession) -> None:
    rows = aggregated(spark, "customer_behaviour").where("customer_id = 'c1' AND window_start = '2026-11-27 10:00:00'")
    [r] = rows.collect()
    assert (r.transactions, r.amount_cents, r.max_amount_cents) == (2, 4_000, 3_000)
    assert (r.approx_devices, r.approx_ip_countries, r.approx_merchants, r.fraud_transactions) == (2, 2, 2, 1)


def test_fraud_rate_per_day(spark: SparkSession) -> None:
    out = aggregated(spark, "fraud_rates").select(
        "event_date", "merchant_category", "transactions", "fraud_transactions", "fraud_rate"
    )
    expected = [
        Row(event_date=H.date(), merchant_category="grocery", transactions=4, fraud_transactions=1, fraud_rate=0.25)
    ]
    assertDataFrameEqual(out, expected)


@pytest.mark.parametrize("table", GOLD_TABLES, ids=lambda t: t.name)
def test_merging_two_halves_gives_the_whole(spark: SparkSession, table: GoldTable) -> None:
    """The MERGE's update of a matched row (SQL over t and u) equals aggregating both batches' rows at once."""
    rows = silver(spark)
    first, second = rows.where(sf.col("merchant_id") == "m1"), rows.where(sf.col("merchant_id") != "m1")
    t, u = table.aggregate(first).alias("t"), table.aggregate(second).alias("u")
    merged = t.join(u, [t[k] == u[k] for k in table.key_columns]).select(
        *(f"t.{c}" for c in ("window_start", "window_end", "event_date", *table.keys)),
        *(sf.expr(sql).alias(name) for name, sql in table.merged().items()),
    )
    whole = table.aggregate(rows).join(merged.select(*table.key_columns), list(table.key_columns), "left_semi")
    assert merged.count() > 0
    assertDataFrameEqual(merged.select(*whole.columns), whole)
