"""The platform's reference codes, defined once: payment methods, currencies, merchant categories, countries.

The generator draws from these codes, silver validates against them, silver's enrichment and dbt join on
them. dbt needs them as seeds, so ``dbt/seeds/{payment_methods,currency_rates,merchant_categories,countries}.csv``
are generated from this module (``python -m shoplake.contracts.reference`` rewrites them) and a unit test fails
when a seed file differs from what this module generates: a code added here reaches every layer, and a code
edited only in a seed is caught before it can make silver accept what dbt then rejects.

The contract's closed vocabularies that are not reference data (channel, device type, status) live here too,
so the generator and silver's validation read one definition. Order matters to the generator (its codes are
indices into these tuples) and fixes the seeds' row order.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import astuple, dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Final


@dataclass(frozen=True)
class PaymentMethod:
    payment_method: str
    payment_method_name: str
    payment_method_type: str
    is_card_based: bool


@dataclass(frozen=True)
class Currency:
    currency_code: str
    currency_name: str
    minor_unit_digits: int  # ISO 4217 exponent: amounts arrive in minor units
    rate_to_usd: Decimal  # fixed reference rates: units of USD / EUR per one unit
    rate_to_eur: Decimal


@dataclass(frozen=True)
class MerchantCategory:
    merchant_category: str
    category_name: str
    category_group: str
    is_high_risk: bool  # card-not-present fraud concentrates there


@dataclass(frozen=True)
class Country:
    country_code: str  # ISO 3166-1 alpha-2
    country_name: str
    region: str
    risk_tier: str


PAYMENT_METHODS: Final = (
    PaymentMethod("card", "Credit or debit card", "card", True),
    PaymentMethod("paypal", "PayPal", "wallet", False),
    PaymentMethod("apple_pay", "Apple Pay", "wallet", True),
    PaymentMethod("google_pay", "Google Pay", "wallet", True),
    PaymentMethod("bank_transfer", "Bank transfer", "bank", False),
    PaymentMethod("gift_card", "Gift card", "voucher", False),
)

CURRENCIES: Final = (
    Currency("USD", "US dollar", 2, Decimal("1.000000"), Decimal("0.920000")),
    Currency("EUR", "Euro", 2, Decimal("1.086957"), Decimal("1.000000")),
    Currency("GBP", "Pound sterling", 2, Decimal("1.265823"), Decimal("1.164557")),
    Currency("CAD", "Canadian dollar", 2, Decimal("0.729927"), Decimal("0.671533")),
    Currency("AUD", "Australian dollar", 2, Decimal("0.653595"), Decimal("0.601307")),
)

MERCHANT_CATEGORIES: Final = (
    MerchantCategory("grocery", "Grocery", "everyday", False),
    MerchantCategory("fashion", "Fashion & apparel", "retail", False),
    MerchantCategory("electronics", "Electronics", "retail", True),
    MerchantCategory("home_garden", "Home & garden", "retail", False),
    MerchantCategory("health_beauty", "Health & beauty", "everyday", False),
    MerchantCategory("sports", "Sports & outdoors", "retail", False),
    MerchantCategory("books_media", "Books & media", "digital", False),
    MerchantCategory("food_delivery", "Food delivery", "everyday", False),
    MerchantCategory("travel", "Travel", "services", True),
    MerchantCategory("digital_goods", "Digital goods", "digital", True),
    MerchantCategory("gaming", "Gaming", "digital", True),
    MerchantCategory("jewelry", "Jewelry & watches", "luxury", True),
    MerchantCategory("gift_cards", "Gift cards", "digital", True),
)

COUNTRIES: Final = (
    Country("US", "United States", "north_america", "low"),
    Country("CA", "Canada", "north_america", "low"),
    Country("MX", "Mexico", "latin_america", "medium"),
    Country("BR", "Brazil", "latin_america", "medium"),
    Country("GB", "United Kingdom", "europe", "low"),
    Country("DE", "Germany", "europe", "low"),
    Country("FR", "France", "europe", "low"),
    Country("ES", "Spain", "europe", "low"),
    Country("IT", "Italy", "europe", "low"),
    Country("NL", "Netherlands", "europe", "low"),
    Country("RO", "Romania", "europe", "medium"),
    Country("UA", "Ukraine", "europe", "high"),
    Country("RU", "Russia", "europe", "high"),
    Country("NG", "Nigeria", "africa", "high"),
    Country("CN", "China", "asia_pacific", "medium"),
    Country("VN", "Vietnam", "asia_pacific", "high"),
    Country("ID", "Indonesia", "asia_pacific", "high"),
    Country("TH", "Thailand", "asia_pacific", "medium"),
    Country("AU", "Australia", "asia_pacific", "low"),
)

# The contract's other closed vocabularies (transaction-v1.avsc documents them).
CHANNELS: Final = ("web", "mobile_app", "marketplace")
DEVICE_TYPES: Final = ("mobile", "desktop", "tablet")
STATUSES: Final = ("approved", "declined", "pending")

PAYMENT_METHOD_CODES: Final = tuple(p.payment_method for p in PAYMENT_METHODS)
CURRENCY_CODES: Final = tuple(c.currency_code for c in CURRENCIES)
CATEGORY_CODES: Final = tuple(c.merchant_category for c in MERCHANT_CATEGORIES)
COUNTRY_CODES: Final = tuple(c.country_code for c in COUNTRIES)
CURRENCY_EXPONENTS: Final = {c.currency_code: c.minor_unit_digits for c in CURRENCIES}
# Units of each currency per US dollar to two decimals: the generator prices baskets with it and the model's
# features convert back with it, so both sides use the same figure.
UNITS_PER_USD: Final = {c.currency_code: round(1 / float(c.rate_to_usd), 2) for c in CURRENCIES}

# Seed file name (in dbt/seeds) -> its rows.
SEEDS: Final[dict[str, tuple[object, ...]]] = {
    "payment_methods.csv": PAYMENT_METHODS,
    "currency_rates.csv": CURRENCIES,
    "merchant_categories.csv": MERCHANT_CATEGORIES,
    "countries.csv": COUNTRIES,
}


def _cell(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def seed_text(name: str) -> str:
    """The CSV text of seed ``name`` as dbt reads it: a header of the field names, then one line per code."""
    rows = SEEDS[name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(f.name for f in fields(rows[0]))  # type: ignore[arg-type]
    writer.writerows([_cell(v) for v in astuple(row)] for row in rows)  # type: ignore[call-overload]
    return out.getvalue()


def write_seeds(folder: Path) -> list[Path]:
    """Rewrite the seed files in ``folder`` from this module; returns the files that changed."""
    changed = []
    for name in SEEDS:
        path, text = folder / name, seed_text(name)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("dbt/seeds")
    for path in write_seeds(target):
        print(f"rewrote {path}")
