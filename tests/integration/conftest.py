"""Shared fixtures of the integration tier: the real local stack.

``stack`` (yields the Settings the services run with) brings every core service up once per
session - a no-op for services that are already healthy, e.g. after ``shoplake up`` - and at the end
stops only the services it started itself, so a developer's running stack is left as it was. The
settings come from the environment like everywhere else: point SHOPLAKE_HOME and the ports elsewhere
to test in isolation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shoplake import stack as local_stack
from shoplake.config import Settings, get_settings


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    """Every core service healthy for the whole session; yields the settings they run with."""
    settings = get_settings()
    core = local_stack.SERVICES
    already = {row.name for row in local_stack.status(settings) if row.healthy and row.name in core}
    started = [name for name in core if name not in already]
    try:
        local_stack.up(settings)
        yield settings
    finally:
        if started:
            local_stack.down(settings, started)
