"""Silver enrichment: reference data loading (the dbt seeds) and the pure enrich transform."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

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
    ReferenceDataError,
    enrich,
    load_reference,
)
from shoplake.runtime.session import spark_session

pytestmark = pytest.mark.unit

SEEDS = Path(__file__).resolve().parents[4] / "dbt" / "seeds"
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


def test_the_dbt_seeds_cover_every_code_the_generator_emits() -> None:
    ref = load_reference(SEEDS)
    assert set(vocab.CATEGORIES) <= set(ref.categories)
    assert set(vocab.COUNTRIES) <= set(ref.countries)
    assert set(vocab.CURRENCIES) <= set(ref.usd_rates)
    assert ref.categories["gift_cards"] == Category("digital", True)
    assert ref.countries["US"] == Country("north_america", "low")
    assert ref.usd_rates["USD"] == Decimal("1.000000")


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("merchant_categories.csv", "merchant_category,category_group\nx,y\n", "lacks column(s) ['is_high_risk']"),
        ("merchant_categories.csv", "merchant_category,category_group,is_high_risk\nx,y,maybe\n", "not true/false"),
        ("countries.csv", "country_code,region,risk_tier\nDE,,low\n", "line 2: empty ['region']"),
        ("currency_rates.csv", "currency_code,rate_to_usd\nUSD,-1\n", "must be positive"),
        ("currency_rates.csv", "currency_code,rate_to_usd\nUSD,abc\n", "is not a number"),
    ],
)
def test_bad_reference_data_is_refused_with_the_file_named(
    tmp_path: Path, file: str, content: str, message: str
) -> None:
    for name in ("merchant_categories.csv", "countries.csv", "currency_rates.csv"):
        (tmp_path / name).write_text((SEEDS / name).read_text())
    (tmp_path / file).write_text(content)
    with pytest.raises(ReferenceDataError, match=re.escape(file)) as err:
        load_reference(tmp_path)
    assert message in str(err.value)


def test_missing_reference_folder_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match=r"silver\.reference_data"):
        load_reference(tmp_path / "nowhere")
