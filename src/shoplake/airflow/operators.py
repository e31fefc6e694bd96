"""Operators for the repeated task shapes of the Shoplake DAGs.

Most tasks of the four DAGs were the same six lines: a ``@task`` function that imports a package function
inside its body (heavy imports must stay out of DAG parsing) and calls it with the settings. These operators
say that in one line, and check what they can when the DAG is parsed (a typo in a function path or a dbt
step name breaks the DAG import, not a run at 3 a.m.) while still importing nothing heavy until ``execute``:

- :class:`PackageTaskOperator` - ``target="shoplake.airflow.ingestion_tasks:check_kafka_health"`` runs
  ``check_kafka_health(settings)``; its return value is the task's XCom, as with ``@task``.
- :class:`DbtStepOperator` - one step of :mod:`shoplake.warehouse.dbt_runner` (``step="run_marts"``).
- :class:`DeltaTablesHealthySensor` - waits (reschedule mode) until every required Delta table of the
  streaming config is healthy: for a DAG that should start when the lakehouse has caught up, rather than
  fail at once (the monitoring DAG's ``check_delta_tables`` fails at once, on purpose).

Every operator takes the usual ``BaseOperator`` arguments (``task_id``, ``trigger_rule``, retries...); the
DAG's ``default_args`` (owner, retries, alert callbacks) apply as to any task.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from airflow.sdk import BaseOperator, BaseSensorOperator

from shoplake.airflow.dbt_tasks import STEPS
from shoplake.config import get_settings

_TARGET: Final = re.compile(r"^shoplake(\.[a-z_][a-z0-9_]*)+:[a-z_][a-z0-9_]*$")


def resolve(target: str) -> Callable[..., Any]:
    """The function named ``package.module:function`` (imported now: call it at execute time only)."""
    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        raise ValueError(f"{target}: {module} has no function {name!r}")
    return fn  # type: ignore[no-any-return]


class PackageTaskOperator(BaseOperator):
    """Calls a ``shoplake`` function with the settings; the function's return value becomes the XCom."""

    template_fields = ("target",)

    def __init__(self, *, target: str, **kwargs: Any) -> None:
        if not _TARGET.match(target):
            raise ValueError(f"target {target!r}: expected 'shoplake.<module>:<function>'")
        super().__init__(**kwargs)
        self.target = target

    def execute(self, context: Any) -> Any:
        return resolve(self.target)(get_settings())


class DbtStepOperator(BaseOperator):
    """Runs one dbt step in its isolated child process; fails with dbt's own report of the failing nodes."""

    template_fields = ("step",)
    ui_color = "#ff694a"  # dbt's orange: dbt tasks stand out in the grid

    def __init__(self, *, step: str, **kwargs: Any) -> None:
        if step not in STEPS:
            raise ValueError(f"unknown dbt step {step!r}; expected one of {STEPS}")
        super().__init__(**kwargs)
        self.step = step

    def execute(self, context: Any) -> dict[str, Any]:
        from shoplake.airflow.dbt_tasks import run_step

        return run_step(get_settings(), self.step)


class DeltaTablesHealthySensor(BaseSensorOperator):
    """Satisfied once every required Delta table exists, loads, and has a commit newer than ``max_age``."""

    def __init__(self, *, max_age: timedelta | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.max_age = max_age

    def poke(self, context: Any) -> bool:
        from shoplake.monitoring.delta_health import check_tables
        from shoplake.pipeline.config import load_streaming_config

        settings = get_settings()
        max_age = self.max_age or timedelta(hours=settings.health.max_table_age_hours)
        tables = check_tables(load_streaming_config(settings), now=datetime.now(UTC), max_age=max_age)
        bad = [f"{t.name}: {t.status}: {t.detail}" for t in tables if not t.healthy]
        for line in bad:
            self.log.info("not yet healthy: %s", line)
        return not bad
