"""Suite-wide rules.

- Every test declares its tier, so `make test` (which selects by marker) never skips one silently.
- The suite runs on its own platform (:mod:`tests.isolation`): the environment is moved there before any
  test module reads the settings, and the services the suite started are stopped at the end
  (``SHOPLAKE_TEST_KEEP=1`` keeps them for a faster re-run).
"""

from __future__ import annotations

import os

import pytest

from tests.isolation import suite_environment

TIERS = ("unit", "integration", "e2e")
USER_ENV = dict(os.environ)  # the environment the suite was started with: the user's platform


def pytest_configure(config: pytest.Config) -> None:
    os.environ.clear()
    os.environ.update(suite_environment(USER_ENV))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items if not any(item.get_closest_marker(t) for t in TIERS)]
    if unmarked:
        raise pytest.UsageError("tests without a tier marker (unit/integration/e2e):\n  " + "\n  ".join(unmarked))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from shoplake.config import get_settings

    settings = get_settings()
    if os.environ.get("SHOPLAKE_TEST_KEEP") == "1" or not any((settings.home / "run").glob("*.pid")):
        return
    from shoplake import stack

    stack.down(settings)
