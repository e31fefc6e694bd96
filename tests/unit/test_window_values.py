"""window_values.plan: which windows a fill copies from silver, follows from the change feed, or drops."""

from __future__ import annotations

import datetime as dt

import pytest

from shoplake.streaming.window_values import RETAIN, Plan, Recorded, plan

H8 = dt.datetime(2026, 3, 2, 8)
H9 = H8 + dt.timedelta(hours=1)
H10 = H8 + dt.timedelta(hours=2)
NOW = 1_800_000_000
FRESH = NOW - 60
STALE = NOW - int(RETAIN.total_seconds()) - 1

pytestmark = pytest.mark.unit


def test_windows_not_held_are_copied() -> None:
    assert plan([H8, H9], {}, 5, NOW) == Plan(drop=(), copy=(H8, H9), follow={})


def test_held_windows_follow_from_the_version_they_reach_only_when_silver_moved_past_it() -> None:
    ledger = {H8: Recorded(3, FRESH), H9: Recorded(5, FRESH)}
    assert plan([H8, H9, H10], ledger, 5, NOW) == Plan(drop=(), copy=(H10,), follow={H8: 3})


def test_windows_untouched_for_longer_than_retain_are_dropped_and_copied_again_if_asked() -> None:
    ledger = {H8: Recorded(3, STALE), H9: Recorded(4, STALE), H10: Recorded(4, NOW - int(RETAIN.total_seconds()))}
    assert plan([H9, H10], ledger, 5, NOW) == Plan(drop=(H8, H9), copy=(H9,), follow={H10: 4})
