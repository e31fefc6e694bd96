"""Bounded retry with exponential backoff, for connection errors only.

A PostgreSQL restart (maintenance, a crash, a failover) drops every open connection and refuses new ones
for a few seconds. The callers here - the streaming warehouse sink and the dbt runner - do work that is
idempotent (a keyed upsert inside one transaction; dbt models rebuilt or merged on their keys), so doing
it again after the server is back is safe and is what an operator would do by hand. Anything that is not
a connection problem (bad SQL, a constraint violation, a failed data test) is raised at once: retrying
it would only hide a real error behind a delay. Every retry is logged at WARNING with the attempt, the
wait and the error, so a flapping database is visible in the logs rather than silently absorbed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """``attempts`` tries in all; the wait doubles from ``first`` up to ``cap`` seconds between them."""

    attempts: int = 8
    first: float = 0.5
    cap: float = 8.0

    def delays(self) -> list[float]:
        """The waits between consecutive attempts (one fewer than ``attempts``)."""
        return [min(self.cap, self.first * 2**i) for i in range(max(self.attempts - 1, 0))]


# 0.5+1+2+4+8+8+8 = 31.5 s of waiting: long enough for a local PostgreSQL restart under load, short
# enough that a database that stays down fails the task (and lets Airflow's own retries take over).
DATABASE_BACKOFF: Final = Backoff()


def retry_transient(
    fn: Callable[[], T],
    *,
    what: str,
    is_transient: Callable[[BaseException], bool],
    backoff: Backoff = DATABASE_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds; retry only errors for which ``is_transient`` is true.

    The last error is re-raised unchanged once the attempts are used up, so callers keep their own
    error handling and messages.
    """
    delays = backoff.delays()
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if attempt >= len(delays) or not is_transient(exc):
                raise
            delay = delays[attempt]
            attempt += 1
            log.warning(
                "%s failed with a connection error (attempt %d of %d), retrying in %.1f s: %s",
                what,
                attempt,
                backoff.attempts,
                delay,
                _first_line(exc),
            )
            sleep(delay)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_postgres_connection_error(exc: BaseException) -> bool:
    """True for psycopg errors that mean "the server went away or is not accepting connections yet".

    ``OperationalError`` covers refused/closed connections and the server's own shutdown and start-up
    refusals (``AdminShutdown``, ``CannotConnectNow``); SQL and data errors are other classes.
    """
    import psycopg

    return isinstance(exc, psycopg.OperationalError)
