"""Closed vocabularies of the transaction contract's categorical fields.

The generator stores these fields as small integer codes and the vectorised Avro encoder turns codes into
bytes through lookup tables, so the string values live in exactly one place. Order matters: codes are
indices into these tuples.
"""

from __future__ import annotations

from typing import Final

from shoplake.contracts import reference

# Countries where customers live and merchants trade (each has a currency below), then countries that only
# appear as IP locations (fraud sources / travel destinations without local merchants). Every one is a
# reference country (checked below).
HOME_COUNTRIES: Final = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "AU")
OTHER_COUNTRIES: Final = ("NG", "RU", "UA", "RO", "BR", "CN", "VN", "ID", "MX", "TH")
COUNTRIES: Final = HOME_COUNTRIES + OTHER_COUNTRIES
HOME_COUNTRY_WEIGHTS: Final = (0.35, 0.15, 0.12, 0.10, 0.06, 0.06, 0.05, 0.06, 0.05)

CURRENCIES: Final = reference.CURRENCY_CODES
_HOME_CURRENCY: Final = {"US": "USD", "GB": "GBP", "CA": "CAD", "AU": "AUD"}  # the rest of the home countries: EUR
# Currency of each home country (index into CURRENCIES) and units of each currency per US dollar.
COUNTRY_CURRENCY: Final = tuple(CURRENCIES.index(_HOME_CURRENCY.get(c, "EUR")) for c in HOME_COUNTRIES)
UNITS_PER_USD: Final = tuple(reference.UNITS_PER_USD[c] for c in CURRENCIES)

CATEGORIES: Final = reference.CATEGORY_CODES
# Relative popularity of each category among merchants and its typical basket size versus a customer's norm.
_CATEGORY_SHARE: Final = {
    "grocery": (0.14, 0.7),
    "fashion": (0.13, 1.2),
    "electronics": (0.08, 2.2),
    "home_garden": (0.08, 1.5),
    "health_beauty": (0.08, 0.8),
    "sports": (0.06, 1.1),
    "books_media": (0.07, 0.5),
    "food_delivery": (0.10, 0.6),
    "travel": (0.04, 3.0),
    "digital_goods": (0.07, 0.35),
    "gaming": (0.06, 0.45),
    "jewelry": (0.03, 2.5),
    "gift_cards": (0.06, 1.0),
}
CATEGORY_SHARE: Final = tuple(_CATEGORY_SHARE[c][0] for c in CATEGORIES)
CATEGORY_AMOUNT: Final = tuple(_CATEGORY_SHARE[c][1] for c in CATEGORIES)

PAYMENT_METHODS: Final = reference.PAYMENT_METHOD_CODES
_PAYMENT_WEIGHT: Final = {
    "card": 0.55,
    "paypal": 0.15,
    "apple_pay": 0.11,
    "google_pay": 0.10,
    "bank_transfer": 0.05,
    "gift_card": 0.04,
}
PAYMENT_WEIGHTS: Final = tuple(_PAYMENT_WEIGHT[p] for p in PAYMENT_METHODS)
CHANNELS: Final = reference.CHANNELS
DEVICE_TYPES: Final = reference.DEVICE_TYPES
STATUSES: Final = reference.STATUSES

# Index 0 means "not fraud" (Avro null); the rest are the named fraud patterns.
FRAUD_PATTERNS: Final = (
    None,
    "card_testing",
    "account_takeover",
    "stolen_card",
    "merchant_compromise",
    "geo_velocity",
)


def code(vocab: tuple[str | None, ...], value: str | None) -> int:
    """Index of ``value`` in ``vocab`` (a readable alternative to magic numbers in the generator)."""
    return vocab.index(value)


def _check_against_reference() -> None:
    """The generator's own tables must cover exactly the reference codes: a new code needs its weights here."""
    problems = []
    if set(COUNTRIES) != set(reference.COUNTRY_CODES) or len(COUNTRIES) != len(set(COUNTRIES)):
        problems.append(f"countries {sorted(set(COUNTRIES) ^ set(reference.COUNTRY_CODES))}")
    if set(_CATEGORY_SHARE) != set(CATEGORIES):
        problems.append(f"categories {sorted(set(_CATEGORY_SHARE) ^ set(CATEGORIES))}")
    if set(_PAYMENT_WEIGHT) != set(PAYMENT_METHODS):
        problems.append(f"payment methods {sorted(set(_PAYMENT_WEIGHT) ^ set(PAYMENT_METHODS))}")
    if problems:
        raise ValueError(f"the generator's vocabulary and shoplake.contracts.reference disagree on {problems}")


_check_against_reference()
