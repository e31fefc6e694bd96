"""Bounded retry on connection errors: what is retried, how often, and what is raised at once."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from shoplake.retry import Backoff, is_postgres_connection_error, retry_transient
from shoplake.warehouse.dbt_runner import DbtStepError, NodeResult, StepResult, is_connection_failure

pytestmark = pytest.mark.unit


def _flaky(failures: list[BaseException]) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"

    return calls, fn


def test_backoff_doubles_up_to_the_cap() -> None:
    assert Backoff(attempts=6, first=0.5, cap=3.0).delays() == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert Backoff(attempts=1).delays() == []


def test_transient_errors_are_retried_until_success() -> None:
    slept: list[float] = []
    calls, fn = _flaky([psycopg.OperationalError("down"), psycopg.OperationalError("still down")])
    out = retry_transient(fn, what="x", is_transient=is_postgres_connection_error, sleep=slept.append)
    assert out == "done" and len(calls) == 3 and slept == [0.5, 1.0]


def test_gives_up_after_the_last_attempt_with_the_original_error() -> None:
    calls, fn = _flaky([psycopg.OperationalError(f"down {i}") for i in range(5)])
    with pytest.raises(psycopg.OperationalError, match="down 2"):
        retry_transient(
            fn,
            what="x",
            is_transient=is_postgres_connection_error,
            backoff=Backoff(attempts=3),
            sleep=lambda _: None,
        )
    assert len(calls) == 3


def test_other_errors_are_raised_at_once() -> None:
    calls, fn = _flaky([psycopg.errors.UniqueViolation("dup")])
    with pytest.raises(psycopg.errors.UniqueViolation):
        retry_transient(fn, what="x", is_transient=is_postgres_connection_error, sleep=lambda _: None)
    assert len(calls) == 1


def _step_error(message: str, status: str = "error") -> DbtStepError:
    node = NodeResult("model.shoplake.fct", "model", "fct", status, message, None, 0.1)
    return DbtStepError(StepResult("run_marts", ("run",), False, 1.0, nodes=(node,)))


@pytest.mark.parametrize(
    "message",
    [
        'connection to server at "localhost" (127.0.0.1), port 5432 failed: Connection refused',
        "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally",
        "FATAL:  terminating connection due to administrator command",
        "FATAL:  the database system is starting up",
    ],
)
def test_dbt_connection_failures_are_transient(message: str) -> None:
    assert is_connection_failure(_step_error(message))


def test_dbt_sql_and_data_failures_are_not() -> None:
    assert not is_connection_failure(_step_error('relation "raw.transactions" does not exist'))
    assert not is_connection_failure(_step_error("Got 3 results, configured to fail if != 0", status="fail"))
    assert not is_connection_failure(RuntimeError("connection refused"))  # only dbt step failures qualify
