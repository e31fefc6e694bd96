"""The fault tests' exactly-once check (tests/integration/exactly_once.py) fails on each kind of wrong landing.

The integration fault tests only ever see correct landings when the platform works; these deliberately
wrong ones show the check would catch a transaction lost, invented or duplicated in any layer.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.integration.exactly_once import Landed, assert_exactly_once, violations

pytestmark = pytest.mark.unit

DELIVERED = {"tx-1", "tx-2", "tx-3"}
LAYERS = ("silver", "raw", "fct_transactions")


def landed(**overrides: Counter[str]) -> Landed:
    """Every layer exactly the delivered ids, except the layers given."""
    layers = {layer: overrides.get(layer, Counter(DELIVERED)) for layer in LAYERS}
    return Landed(layers["silver"], layers["raw"], layers["fct_transactions"], quarantined=0)


def test_a_correct_landing_passes() -> None:
    assert violations(landed(), DELIVERED) == []
    assert_exactly_once(landed(), DELIVERED)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_missing_transaction_fails(layer: str) -> None:
    wrong = landed(**{layer: Counter({"tx-1", "tx-2"})})
    assert violations(wrong, DELIVERED) == [f"{layer}: 1 transactions missing, e.g. ['tx-3']"]
    with pytest.raises(AssertionError, match=f"{layer}: 1 transactions missing"):
        assert_exactly_once(wrong, DELIVERED)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_duplicated_transaction_fails(layer: str) -> None:
    wrong = landed(**{layer: Counter(["tx-1", "tx-2", "tx-3", "tx-2"])})
    assert violations(wrong, DELIVERED) == [f"{layer}: 1 transactions more than once, e.g. ['tx-2']"]
    with pytest.raises(AssertionError, match=f"{layer}: 1 transactions more than once"):
        assert_exactly_once(wrong, DELIVERED)


def test_an_unexpected_transaction_and_quarantined_records_fail() -> None:
    wrong = Landed(Counter(DELIVERED), Counter(DELIVERED), Counter([*DELIVERED, "tx-9"]), quarantined=2)
    assert violations(wrong, DELIVERED) == [
        "2 records quarantined",
        "fct_transactions: 1 transactions unexpected, e.g. ['tx-9']",
    ]


def test_nothing_delivered_is_not_a_pass() -> None:
    empty = Landed(Counter(), Counter(), Counter(), quarantined=0)
    assert violations(empty, set()) == []
    with pytest.raises(AssertionError, match="vacuously"):
        assert_exactly_once(empty, set())
