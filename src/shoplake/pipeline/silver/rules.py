"""Limits of the transaction contract that silver validation checks beside the reference codes.

The codes themselves (payment methods, categories, countries, currencies with their minor units, channels,
device types, statuses) come from :mod:`shoplake.contracts.reference`, the one definition the generator and
dbt's seeds share: silver accepts exactly what dbt's relationship tests accept.
"""

from __future__ import annotations

from typing import Final

from shoplake.contracts import reference

PAYMENT_METHODS: Final = frozenset(reference.PAYMENT_METHOD_CODES)
CATEGORIES: Final = frozenset(reference.CATEGORY_CODES)
COUNTRIES: Final = frozenset(reference.COUNTRY_CODES)
CHANNELS: Final = frozenset(reference.CHANNELS)
DEVICE_TYPES: Final = frozenset(reference.DEVICE_TYPES)
STATUSES: Final = frozenset(reference.STATUSES)
# Currency -> ISO 4217 exponent: amounts arrive in minor units, and not every currency has two decimals.
CURRENCY_EXPONENTS: Final = reference.CURRENCY_EXPONENTS

# Largest single payment accepted as plausible (in minor units): 10 million in two-decimal currencies.
MAX_AMOUNT_MINOR_UNITS: Final = 1_000_000_000
# Oldest plausible event: anything earlier is a producer bug (e.g. seconds sent as milliseconds).
MIN_EVENT_TIME_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
