"""The fault tests' invariant: every delivered transaction exactly once in silver, raw and fct_transactions.

Kept apart from :mod:`tests.integration.faults` (which drives real services) and free of I/O, so a unit
test can feed it deliberately wrong landings and show that it catches a missing, an unexpected and a
duplicated transaction in each layer - an invariant check that cannot fail would prove nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

SAMPLE = 3


@dataclass(frozen=True)
class Landed:
    """Where a topic's transactions landed after one streaming catch-up + dbt run: transaction id -> copies."""

    silver: Counter[str]
    raw: Counter[str]
    fct_transactions: Counter[str]
    quarantined: int

    def layers(self) -> dict[str, Counter[str]]:
        """Each layer the invariant covers, by the name a failure message uses."""
        return {"silver": self.silver, "raw": self.raw, "fct_transactions": self.fct_transactions}


def violations(landed: Landed, delivered: set[str]) -> list[str]:
    """Every way ``landed`` breaks "each delivered transaction exactly once, nothing else" (empty: none)."""
    problems = [f"{landed.quarantined} records quarantined"] if landed.quarantined else []
    for layer, counts in landed.layers().items():
        missing = sorted(delivered - counts.keys())
        unexpected = sorted(counts.keys() - delivered)
        twice = sorted(tx for tx, n in counts.items() if n > 1)
        for what, ids in (("missing", missing), ("unexpected", unexpected), ("more than once", twice)):
            if ids:
                problems.append(f"{layer}: {len(ids)} transactions {what}, e.g. {ids[:SAMPLE]}")
    return problems


def assert_exactly_once(landed: Landed, delivered: set[str]) -> None:
    """Fail the test with every violation of the invariant (a vacuous check - nothing delivered - fails too)."""
    assert delivered, "nothing was delivered: the exactly-once invariant would hold vacuously"
    problems = violations(landed, delivered)
    assert not problems, "exactly-once violated:\n  " + "\n  ".join(problems)
