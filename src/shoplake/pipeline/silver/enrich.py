"""Silver enrichment: merchant and customer-side attributes looked up in the platform's reference data.

A transaction carries codes - merchant category, merchant country, the IP country the customer paid from,
currency. What they mean (a category's group and whether card-not-present fraud concentrates there, a
country's sales region and fraud risk tier, a currency's USD rate) is reference data. It is defined once, in
:mod:`shoplake.contracts.reference`, which also generates the dbt seeds the warehouse joins on, so the lake
and the warehouse cannot disagree about what a code means.

The driver turns the (tiny) tables into literal map expressions: no join, no shuffle, no file access on the
executors, and :func:`enrich` stays a pure ``DataFrame -> DataFrame`` function. A code the reference data
does not know enriches to null: validation, not enrichment, decides what is valid.

Deliberately absent: a customer's home country or segment. One transaction cannot tell them (a customer
abroad pays from a foreign IP); they are properties of the customer's history, which dbt's ``dim_customers``
derives from all of it. Per transaction, silver records where the customer paid from (``ip_region``,
``ip_country_risk_tier``) and whether that differs from the merchant's country (``is_cross_border``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as sf

from shoplake.contracts import reference

# Column -> Spark type of every column enrichment adds to silver, in table order.
ENRICHMENT_COLUMNS: Final[dict[str, str]] = {
    "merchant_category_group": "string",
    "is_high_risk_category": "boolean",
    "merchant_region": "string",
    "merchant_country_risk_tier": "string",
    "ip_region": "string",
    "ip_country_risk_tier": "string",
    "is_cross_border": "boolean",
    "amount_usd": "decimal(18,2)",
}


@dataclass(frozen=True)
class Category:
    group: str
    is_high_risk: bool


@dataclass(frozen=True)
class Country:
    region: str
    risk_tier: str


@dataclass(frozen=True)
class ReferenceData:
    """Code -> attributes (from :mod:`shoplake.contracts.reference`, or built by hand in unit tests)."""

    categories: Mapping[str, Category]
    countries: Mapping[str, Country]
    usd_rates: Mapping[str, Decimal]


def load_reference() -> ReferenceData:
    """The platform's reference data, as dbt's seeds hold it (both come from one module)."""
    return ReferenceData(
        {c.merchant_category: Category(c.category_group, c.is_high_risk) for c in reference.MERCHANT_CATEGORIES},
        {c.country_code: Country(c.region, c.risk_tier) for c in reference.COUNTRIES},
        {c.currency_code: c.rate_to_usd for c in reference.CURRENCIES},
    )


def _lookup(mapping: Mapping[str, object], key: Column, value_type: str) -> Column:
    """``mapping[key]`` as a literal map expression (null for an unknown key or an empty mapping)."""
    if not mapping:
        return sf.lit(None).cast(value_type)
    pairs: list[Column] = []
    for code, value in sorted(mapping.items()):
        pairs += [sf.lit(code), sf.lit(value).cast(value_type)]
    return sf.element_at(sf.create_map(*pairs), key)


def enrich(silver: DataFrame, ref: ReferenceData) -> DataFrame:
    """Silver rows + :data:`ENRICHMENT_COLUMNS` (pure: same rows in, same rows out, columns appended)."""
    return silver.withColumns(_enrichment_columns(ref))


# ReferenceData -> its enrichment expressions. The literal maps take thousands of py4j calls to compose, driver
# time every micro-batch would pay; a query loads its reference data once, so they are composed once.
# Keyed by identity and holding the ReferenceData itself, so an id is never reused while its entry lives.
_COMPOSED: dict[int, tuple[ReferenceData, dict[str, Column]]] = {}
_COMPOSED_MAX: Final = 8


def _enrichment_columns(ref: ReferenceData) -> dict[str, Column]:
    entry = _COMPOSED.get(id(ref))
    if entry is not None and entry[0] is ref:
        return entry[1]
    groups = {code: c.group for code, c in ref.categories.items()}
    high_risk = {code: c.is_high_risk for code, c in ref.categories.items()}
    regions = {code: c.region for code, c in ref.countries.items()}
    tiers = {code: c.risk_tier for code, c in ref.countries.items()}
    rate = _lookup(ref.usd_rates, sf.col("currency"), "decimal(12,6)")
    merchant_country, ip_country = sf.col("merchant_country"), sf.col("ip_country")
    added = {
        "merchant_category_group": _lookup(groups, sf.col("merchant_category"), "string"),
        "is_high_risk_category": _lookup(high_risk, sf.col("merchant_category"), "boolean"),
        "merchant_region": _lookup(regions, merchant_country, "string"),
        "merchant_country_risk_tier": _lookup(tiers, merchant_country, "string"),
        "ip_region": _lookup(regions, ip_country, "string"),
        "ip_country_risk_tier": _lookup(tiers, ip_country, "string"),
        "is_cross_border": ip_country != merchant_country,
        "amount_usd": (sf.col("amount") * rate).cast("decimal(18,2)"),
    }
    columns = {name: expr.cast(ENRICHMENT_COLUMNS[name]) for name, expr in added.items()}
    if len(_COMPOSED) >= _COMPOSED_MAX:
        _COMPOSED.pop(next(iter(_COMPOSED)))
    _COMPOSED[id(ref)] = (ref, columns)
    return columns
