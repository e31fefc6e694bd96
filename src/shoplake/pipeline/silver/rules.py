"""Reference data of the transaction contract that silver validation checks against.

The enum values are the ones ``transaction-v1.avsc`` documents; currencies are ISO 4217 (active codes), with
the number of minor units each one has, because ``amount_cents`` is "minor units" and not every currency
has two decimals (JPY has none, BHD three).
"""

from __future__ import annotations

from typing import Final

PAYMENT_METHODS: Final = frozenset({"card", "paypal", "apple_pay", "google_pay", "bank_transfer", "gift_card"})
CHANNELS: Final = frozenset({"web", "mobile_app", "marketplace"})
DEVICE_TYPES: Final = frozenset({"desktop", "mobile", "tablet"})
STATUSES: Final = frozenset({"approved", "declined", "pending"})


def _codes(text: str) -> tuple[str, ...]:
    """Space-separated codes as a tuple (long code lists stay readable)."""
    return tuple(text.split())


# Currencies whose minor unit is not 1/100 (ISO 4217 exponent); every other known code has exponent 2.
CURRENCY_EXPONENT_OVERRIDES: Final[dict[str, int]] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
_TWO_DECIMAL: Final = _codes(
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF "
    "CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF "
    "IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR "
    "MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
    "SHP SLE SOS SRD SSP STN SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWG"
)
CURRENCY_EXPONENTS: Final[dict[str, int]] = {**dict.fromkeys(_TWO_DECIMAL, 2), **CURRENCY_EXPONENT_OVERRIDES}

# Largest single payment accepted as plausible (in minor units): 10 million in two-decimal currencies.
MAX_AMOUNT_MINOR_UNITS: Final = 1_000_000_000
# Oldest plausible event: anything earlier is a producer bug (e.g. seconds sent as milliseconds).
MIN_EVENT_TIME_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
