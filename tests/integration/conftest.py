"""Shared fixtures of the integration tier: the real local stack.

``stack`` (yields the Settings the services run with) brings every core service up once per
session - a no-op for services that are already healthy, e.g. after ``shoplake up`` - and at the end
stops only the services it started itself, so a developer's running stack is left as it was. ``airflow``
does the same for Airflow, which is not a core service (it is heavy): only the modules that need it ask. The
settings are the suite's own platform (``tests/isolation.py``), never the user's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shoplake import stack as local_stack
from shoplake.airflow.rest import AirflowClient
from shoplake.config import Settings, get_settings
from shoplake.demo import DAG_IDS


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


@pytest.fixture(scope="session")
def airflow(stack: Settings) -> Iterator[AirflowClient]:
    """Airflow healthy with the four DAGs parsed; stopped at the end only if this fixture started it."""
    already = any(row.name == "airflow" and row.healthy for row in local_stack.status(stack))
    local_stack.up(stack, ["airflow"])
    client = AirflowClient(stack)
    for dag_id in DAG_IDS:
        client.wait_for_dag(dag_id, timeout=stack.service_start_timeout)
    try:
        yield client
    finally:
        if not already:
            local_stack.down(stack, ["airflow"])
