"""window_values: which windows a fill copies from silver, follows from the change feed, or drops (``plan``), and
what each held window reached, read from the Delta log's file statistics (``ledger``)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shoplake.streaming.window_values import FOLLOW_MARGIN, RETAIN, Plan, Recorded, followed_floor, ledger, plan

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


def _file(window: dt.datetime, version: int | None, at: int | None) -> dict[str, Any]:
    """One add action as the Delta log reader flattens it: naive UTC partition value, column maxima."""
    return {"partition.window_start": window, "max.silver_version": version, "max.recorded_at_epoch_s": at}


@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time UTC+05:30, where naive UTC and naive local datetimes differ."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_ledger_takes_each_windows_latest_append_and_drops_nothing_it_cannot_read() -> None:
    files = [_file(H8, 3, 100), _file(H8, 7, 300), _file(H8, 5, 200), _file(H9, None, None)]
    # The window whose file has no statistics counts as recorded at epoch 0: plan drops and copies it again.
    assert ledger(files) == {H8: Recorded(7, 300), H9: Recorded(-1, 0)}
    assert plan([H8, H9], ledger(files), 8, 300 + int(RETAIN.total_seconds())).drop == (H9,)


@pytest.mark.usefixtures("kolkata")
def test_ledger_keys_are_naive_local_time_like_the_windows_spark_returns() -> None:
    assert list(ledger([_file(H8, 1, 100)])) == [dt.datetime(2026, 3, 2, 13, 30)]


def test_the_log_floor_is_the_oldest_version_a_fill_may_still_follow() -> None:
    horizon = int((RETAIN + FOLLOW_MARGIN).total_seconds())
    held = {H8: Recorded(3, NOW - horizon - 1), H9: Recorded(5, NOW - horizon), H10: Recorded(9, NOW)}
    # H8 is past the horizon: the next fill drops it, so only H9 and H10 hold silver's log back.
    assert followed_floor(held, NOW) == 5
    assert followed_floor({H8: Recorded(3, NOW - horizon - 1)}, NOW) is None
    assert followed_floor({}, NOW) is None
