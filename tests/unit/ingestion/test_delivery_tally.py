"""Delivery-report accounting of the producer (pure logic; Kafka messages replaced by a tiny stand-in)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from shoplake.ingestion.producer import PartitionDelivery, _Tally

pytestmark = pytest.mark.unit


@dataclass
class _Msg:
    p: int
    o: int

    def partition(self) -> int:
        return self.p

    def offset(self) -> int:
        return self.o


class _Err:
    def str(self) -> str:
        return "Local: Message timed out"


def test_counts_first_and_last_offset_per_partition_and_grows() -> None:
    tally = _Tally(2)
    for p, o in [(0, 10), (1, 0), (0, 11), (0, 12), (4, 7)]:  # partition 4 was not expected
        tally(None, _Msg(p, o))  # type: ignore[arg-type]
    assert tally.delivered() == 5 and tally.failed == 0
    assert tally.partitions() == {
        0: PartitionDelivery(3, 10, 12),
        1: PartitionDelivery(1, 0, 0),
        4: PartitionDelivery(1, 7, 7),
    }


def test_failures_are_counted_and_described() -> None:
    tally = _Tally(1)
    tally(None, _Msg(0, 0))  # type: ignore[arg-type]
    for _ in range(25):
        tally(_Err(), _Msg(0, -1))  # type: ignore[arg-type]
    assert tally.failed == 25 and tally.delivered() == 1
    assert len(tally.errors) == _Tally.MAX_ERRORS and "timed out" in tally.errors[0]
