"""Silver enrichment: merchant and customer-side attributes looked up in the platform's reference data.

A transaction carries codes - merchant category, merchant country, the IP country the customer paid from,
currency. What they mean (a category's group and whether card-not-present fraud concentrates there, a
country's sales region and fraud risk tier, a currency's USD rate) is reference data. It is kept once, as the
dbt seeds the warehouse joins on (``dbt/seeds/{merchant_categories,countries,currency_rates}.csv``), and
silver reads the same files, so the lake and the warehouse cannot disagree about what a code means.

The driver turns the (tiny) tables into literal map expressions: no join, no shuffle, no file access on the
executors, and :func:`enrich` stays a pure ``DataFrame -> DataFrame`` function. A code the reference data
does not know enriches to null: validation, not enrichment, decides what is valid.

Deliberately absent: a customer's home country or segment. One transaction cannot tell them (a customer
abroad pays from a foreign IP); they are properties of the customer's history, which dbt's ``dim_customers``
derives from all of it. Per transaction, silver records where the customer paid from (``ip_region``,
``ip_country_risk_tier``) and whether that differs from the merchant's country (``is_cross_border``).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as sf

CATEGORIES_FILE: Final = "merchant_categories.csv"
COUNTRIES_FILE: Final = "countries.csv"
RATES_FILE: Final = "currency_rates.csv"

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


class ReferenceDataError(ValueError):
    """A reference file is missing or malformed; the message names the file and the offending row."""


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
    """Code -> attributes, as loaded from the seeds (or built by hand in unit tests)."""

    categories: Mapping[str, Category]
    countries: Mapping[str, Country]
    usd_rates: Mapping[str, Decimal]


def _rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise ReferenceDataError(f"reference data {path} not found (silver.reference_data in the streaming config)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ReferenceDataError(f"{path} lacks column(s) {missing}")
        rows = list(reader)
    for line, row in enumerate(rows, start=2):
        blank = [c for c in required if not (row.get(c) or "").strip()]
        if blank:
            raise ReferenceDataError(f"{path} line {line}: empty {blank}")
    return rows


def _boolean(path: Path, line: int, value: str) -> bool:
    if value not in ("true", "false"):
        raise ReferenceDataError(f"{path} line {line}: {value!r} is not true/false")
    return value == "true"


def _rate(path: Path, line: int, value: str) -> Decimal:
    try:
        rate = Decimal(value)
    except InvalidOperation as exc:
        raise ReferenceDataError(f"{path} line {line}: rate {value!r} is not a number") from exc
    if not rate.is_finite() or rate <= 0:
        raise ReferenceDataError(f"{path} line {line}: rate {value!r} must be positive")
    return rate


def load_reference(folder: Path) -> ReferenceData:
    """Read the three seed files in ``folder``; every problem raises before any Spark work starts."""
    cat_path, country_path, rate_path = folder / CATEGORIES_FILE, folder / COUNTRIES_FILE, folder / RATES_FILE
    categories = {
        r["merchant_category"]: Category(r["category_group"], _boolean(cat_path, i, r["is_high_risk"]))
        for i, r in enumerate(_rows(cat_path, ("merchant_category", "category_group", "is_high_risk")), start=2)
    }
    countries = {
        r["country_code"]: Country(r["region"], r["risk_tier"])
        for r in _rows(country_path, ("country_code", "region", "risk_tier"))
    }
    rates = {
        r["currency_code"]: _rate(rate_path, i, r["rate_to_usd"])
        for i, r in enumerate(_rows(rate_path, ("currency_code", "rate_to_usd")), start=2)
    }
    return ReferenceData(categories, countries, rates)


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
