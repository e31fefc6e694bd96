"""Argument types for the ``shoplake`` CLI: wrong types and out-of-range values die in the parser.

argparse calls these while parsing, before :func:`shoplake.config.get_settings` runs and before any
handler touches a service, a file or a Spark session, so a negative count, ``nan``, a 20-digit number or
``"1; DROP TABLE"`` costs an exit code 2 and one line naming the option - never a half-started stack.
Limits that depend on settings (e.g. ``INGEST_MAX_TRANSACTIONS``) are checked by the library functions,
which also run before their side effects.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import datetime
from typing import Final

MAX_SEED: Final = 2**63 - 1
# scikit-learn's random_state must fit an unsigned 32-bit integer.
MAX_ML_SEED: Final = 2**32 - 1


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An integer in ``low..high`` (inclusive)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse


def number_in(low: float, high: float, *, low_inclusive: bool = True) -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_inclusive=False``); nan/inf refused."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        above = value >= low if low_inclusive else value > low
        if not math.isfinite(value) or not above or value > high:
            bracket = "[" if low_inclusive else "("
            raise argparse.ArgumentTypeError(f"{text!r} is outside {bracket}{low:g}, {high:g}]")
        return value

    return parse


def iso_instant(text: str) -> str:
    """An ISO-8601 date or date-time (kept as text: the library decides how to read a missing zone)."""
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 date or date-time") from None
    return text


def iso_instant_with_zone(text: str) -> str:
    """An ISO-8601 date-time with an explicit UTC offset (event-time starts must not depend on the host)."""
    iso_instant(text)
    if datetime.fromisoformat(text).utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no timezone: add Z or +00:00")
    return text


PORT: Final = int_in(1, 65535)
