"""Closed vocabularies of the transaction contract's categorical fields.

The generator stores these fields as small integer codes and the vectorised Avro encoder turns codes into
bytes through lookup tables, so the string values live in exactly one place. Order matters: codes are
indices into these tuples.
"""

from __future__ import annotations

from typing import Final

# Countries where customers live and merchants trade (each has a currency below), then countries that only
# appear as IP locations (fraud sources / travel destinations without local merchants).
HOME_COUNTRIES: Final = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "AU")
OTHER_COUNTRIES: Final = ("NG", "RU", "UA", "RO", "BR", "CN", "VN", "ID", "MX", "TH")
COUNTRIES: Final = HOME_COUNTRIES + OTHER_COUNTRIES
HOME_COUNTRY_WEIGHTS: Final = (0.35, 0.15, 0.12, 0.10, 0.06, 0.06, 0.05, 0.06, 0.05)

CURRENCIES: Final = ("USD", "GBP", "EUR", "CAD", "AUD")
# Currency of each home country (index into CURRENCIES) and units of that currency per US dollar.
COUNTRY_CURRENCY: Final = (0, 1, 2, 2, 2, 2, 2, 3, 4)
UNITS_PER_USD: Final = (1.0, 0.79, 0.92, 1.37, 1.53)

CATEGORIES: Final = (
    "grocery",
    "fashion",
    "electronics",
    "home_garden",
    "health_beauty",
    "sports",
    "books_media",
    "food_delivery",
    "travel",
    "digital_goods",
    "gaming",
    "jewelry",
    "gift_cards",
)
# Relative popularity of each category among merchants and its typical basket size versus a customer's norm.
CATEGORY_SHARE: Final = (0.14, 0.13, 0.08, 0.08, 0.08, 0.06, 0.07, 0.10, 0.04, 0.07, 0.06, 0.03, 0.06)
CATEGORY_AMOUNT: Final = (0.7, 1.2, 2.2, 1.5, 0.8, 1.1, 0.5, 0.6, 3.0, 0.35, 0.45, 2.5, 1.0)

PAYMENT_METHODS: Final = ("card", "paypal", "apple_pay", "google_pay", "bank_transfer", "gift_card")
PAYMENT_WEIGHTS: Final = (0.55, 0.15, 0.11, 0.10, 0.05, 0.04)
CHANNELS: Final = ("web", "mobile_app", "marketplace")
DEVICE_TYPES: Final = ("mobile", "desktop", "tablet")
STATUSES: Final = ("approved", "declined", "pending")

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
