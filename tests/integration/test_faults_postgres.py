"""PostgreSQL restarts while the warehouse sink writes and while dbt builds: retried, converges, idempotent.

The invariant: every transaction written exactly once to ``raw.transactions`` and to ``fct_transactions``,
however the restart falls. Each test works in its own database; PostgreSQL is the stack's own server,
stopped and started through the supervisor (``faults``) while the work runs in a thread.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from shoplake.config import Settings
from shoplake.pipeline.sinks.postgres import count_rows, ensure_table, upsert
from shoplake.warehouse import dbt_runner, raw_loader
from tests.integration import faults

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

N = 3_000


@pytest.fixture
def settings(stack: Settings) -> Iterator[Settings]:
    db = f"shoplake_faults_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(db)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(db)))
    yield stack.with_env(POSTGRES_DB=db)
    faults.start(stack, "postgres")  # whatever happened in the test, leave the server up for the next one
    with psycopg.connect(stack.postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(db)))


class Background:
    """Run ``fn`` in a thread and hand its result (or exception) back to the test."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._fn = fn
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float = 300) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background work did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def retries_logged(caplog: pytest.LogCaptureFixture, what: str) -> int:
    return sum(1 for r in caplog.records if r.name == "shoplake.retry" and r.getMessage().startswith(what))


def generated_rows(n: int, run_key: str) -> pa.Table:
    parts = []
    offset = 0
    for batch in raw_loader.batches(n, run_key):
        parts.append(raw_loader.silver_rows(batch.to_columns(), "it-faults", offset))
        offset += len(batch)
    return pa.concat_tables(parts)


def distinct_ids(settings: Settings, table: str) -> tuple[int, int]:
    with psycopg.connect(settings.postgres.dsn()) as conn:
        row = conn.execute(f"select count(*), count(distinct transaction_id) from {table}").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_sink_upsert_retries_across_a_postgres_restart(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="shoplake.retry")
    target = raw_loader.raw_table(settings)
    ensure_table(target)
    rows = generated_rows(N, "faults-sink")
    half = N // 2
    assert upsert(target, rows.slice(0, half)) == half

    faults.stop(settings, "postgres")  # the batch starts while the server is down ...
    batch = Background(lambda: upsert(target, rows.slice(half)))
    faults.wait_for(lambda: retries_logged(caplog, "upserting") > 0, "the sink to log a connection retry")
    faults.start(settings, "postgres")  # ... and completes once it is back, without any outside help
    assert batch.join() == N - half

    assert count_rows(target) == N
    assert distinct_ids(settings, "raw.transactions") == (N, N)
    assert upsert(target, rows) == 0  # replaying everything (a rewound checkpoint) changes nothing
    assert count_rows(target) == N


def test_dbt_build_retries_when_postgres_restarts_mid_run(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="shoplake.retry")
    loaded = raw_loader.load(settings, N, "faults-dbt")
    options = dbt_runner.BuildOptions(docs=False)

    def dbt_connected() -> bool:
        with psycopg.connect(settings.postgres.dsn("postgres")) as conn:
            row = conn.execute(
                "select count(*) from pg_stat_activity where datname = %s and application_name = 'dbt'",
                (settings.postgres.db,),
            ).fetchone()
        return row is not None and row[0] > 0

    # deps -> seed -> staging -> marts (the data tests add minutes and nothing to this fault)
    steps = [step for step in dbt_runner.build_steps(options) if step.name != "test"]
    build = Background(lambda: dbt_runner.run_steps(settings, steps))
    faults.wait_for(dbt_connected, "dbt to open its warehouse connection", timeout=180, interval=0.05)
    faults.restart(settings, "postgres")  # fast shutdown: dbt's open connections are terminated mid-query
    results = build.join()

    assert [r.step for r in results] == [step.name for step in steps] and all(r.success for r in results)
    assert retries_logged(caplog, "dbt (") > 0, "the restart should have interrupted a dbt step"
    assert distinct_ids(settings, "raw.transactions") == (loaded.count, loaded.count)
    assert distinct_ids(settings, "marts.fct_transactions") == (loaded.count, loaded.count)
    dbt_runner.run_marts(settings, options)  # running the marts again over the same data changes nothing
    assert distinct_ids(settings, "marts.fct_transactions") == (loaded.count, loaded.count)
