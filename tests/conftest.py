"""Suite-wide rules: every test declares its tier, so `make test` (which selects by marker) never skips one silently."""

from __future__ import annotations

import pytest

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items if not any(item.get_closest_marker(t) for t in TIERS)]
    if unmarked:
        raise pytest.UsageError("tests without a tier marker (unit/integration/e2e):\n  " + "\n  ".join(unmarked))
