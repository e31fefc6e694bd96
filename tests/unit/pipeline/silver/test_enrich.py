"""Silver enrichment: reference data loading (the dbt seeds) and the pure enrich transform."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as sf
from pyspark.testing import assertDataFrameEqual

from shoplake.config import get_settings
from shoplake.ingestion import vocab
from shoplake.pipeline.silver.enrich import (
    ENRICHMENT_COLUMNS,
    Category,
    Country,
    ReferenceData,
    enrich,
    load_reference,
)
from shoplake.runtime.session import spark_session

pytestmark = pytest.mark.unit
REF = ReferenceData(
    categories={"electronics": Category("retail", True), "grocery": Category("everyday", False)},
    countries={"DE": Country("europe", "low"), "NG": Country("africa", "high")},
    usd_rates={"EUR": Decimal("1.086957"), "USD": Decimal("1")},
)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield spark_session(get_settings(), app_name="shoplake-unit", shuffle_partitions=1)


def silver(spark: SparkSession, rows: list[tuple[str, str, str, str, str, str]]) -> DataFrame:
    return spark.createDataFrame(
        rows,
        "transaction_id string, merchant_category string, merchant_country string, ip_country string, "
        "currency string, amount string",
    ).withColumn("amount", sf.col("amount").cast("decimal(18,3)"))


def test_enrich_adds_merchant_and_customer_side_attributes(spark: SparkSession) -> None:
    df = silver(
        spark,
        [
            ("a", "electronics", "DE", "DE", "EUR", "100.000"),
            ("b", "grocery", "DE", "NG", "USD", "12.345"),
        ],
    )
    out = enrich(df, REF)
    assert out.columns == [*df.columns, *ENRICHMENT_COLUMNS]
    assert {f.name: f.dataType.simpleString() for f in out.schema.fields if f.name in ENRICHMENT_COLUMNS} == (
        ENRICHMENT_COLUMNS
    )
    expected = [
        Row(
            transaction_id="a",
            merchant_category_group="retail",
            is_high_risk_category=True,
            merchant_region="europe",
            merchant_country_risk_tier="low",
            ip_region="europe",
            ip_country_risk_tier="low",
            is_cross_border=False,
            amount_usd=Decimal("108.70"),
        ),
        Row(
            transaction_id="b",
            merchant_category_group="everyday",
            is_high_risk_category=False,
            merchant_region="europe",
            merchant_country_risk_tier="low",
            ip_region="africa",
            ip_country_risk_tier="high",
            is_cross_border=True,
            amount_usd=Decimal("12.35"),
        ),
    ]
    assertDataFrameEqual(out.select("transaction_id", *ENRICHMENT_COLUMNS), expected)


def test_unknown_codes_enrich_to_null_and_keep_the_row(spark: SparkSession) -> None:
    df = silver(spark, [("c", "pets", "JP", "JP", "JPY", "1500.000")])
    out = enrich(df, REF).select("transaction_id", *ENRICHMENT_COLUMNS)
    expected = Row(
        transaction_id="c",
        merchant_category_group=None,
        is_high_risk_category=None,
        merchant_region=None,
        merchant_country_risk_tier=None,
        ip_region=None,
        ip_country_risk_tier=None,
        is_cross_border=False,
        amount_usd=None,
    )
    assertDataFrameEqual(out, [expected])


def test_reference_data_covers_every_code_the_generator_emits() -> None:
    ref = load_reference()
    assert set(vocab.CATEGORIES) <= set(ref.categories)
    assert set(vocab.COUNTRIES) <= set(ref.countries)
    assert set(vocab.CURRENCIES) <= set(ref.usd_rates)
    assert ref.categories["gift_cards"] == Category("digital", True)
    assert ref.countries["US"] == Country("north_america", "low")
    assert ref.usd_rates["USD"] == Decimal("1.000000")
