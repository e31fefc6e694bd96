"""Ingestion parameters are validated before any side effect (no services are needed to reject them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shoplake.config import Settings
from shoplake.ingestion.run import IngestParameterError, default_run_key, parse_start, validate_params

pytestmark = pytest.mark.unit

SETTINGS = Settings.from_env({"INGEST_MAX_TRANSACTIONS": "1000"})


@pytest.mark.parametrize(
    ("n", "fragment"),
    [
        (0, "positive"),
        (-5, "positive"),
        (1001, "exceeds the cap"),
        (2.5, "integer"),
        ("10", "integer"),
        (True, "integer"),
    ],
)
def test_bad_transaction_counts(n: Any, fragment: str) -> None:
    with pytest.raises(IngestParameterError, match=fragment):
        validate_params(SETTINGS, n, 1, "2026-01-01T00:00:00Z")


@pytest.mark.parametrize("seed", [-1, 2**63, 1.0, None, "7"])
def test_bad_seeds(seed: Any) -> None:
    with pytest.raises(IngestParameterError, match="seed"):
        validate_params(SETTINGS, 10, seed, "2026-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("start", "fragment"),
    [
        ("yesterday", "not an ISO-8601"),
        ("2026-13-01T00:00:00Z", "not an ISO-8601"),
        ("2026-01-01T00:00:00", "no timezone"),
        (datetime(2026, 1, 1), "no timezone"),  # naive on purpose
        ("1999-12-31T23:00:00Z", "outside"),
        (20260101, "ISO-8601 string or datetime"),
    ],
)
def test_bad_starts(start: Any, fragment: str) -> None:
    with pytest.raises(IngestParameterError, match=fragment):
        validate_params(SETTINGS, 10, 1, start)


def test_start_is_normalised_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    assert parse_start("2026-01-01T01:00:00+01:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_start("2026-01-01T00:00:00z") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_start(datetime(2026, 1, 1, 1, tzinfo=cet)).tzinfo == UTC


def test_default_run_key_is_the_logical_identity() -> None:
    params = validate_params(SETTINGS, 10, 3, "2026-01-01T00:00:00Z")
    assert params.run_key == default_run_key(datetime(2026, 1, 1, tzinfo=UTC), 3, 10)
    assert validate_params(SETTINGS, 10, 3, "2026-01-01T00:00:00Z").run_key == params.run_key
    assert validate_params(SETTINGS, 11, 3, "2026-01-01T00:00:00Z").run_key != params.run_key


@pytest.mark.parametrize("run_key", ["", "   ", "x" * 251])
def test_bad_run_keys(run_key: str) -> None:
    with pytest.raises(IngestParameterError, match="run_key"):
        validate_params(SETTINGS, 10, 1, "2026-01-01T00:00:00Z", run_key)


@pytest.mark.parametrize("span", [timedelta(0), timedelta(seconds=-1), timedelta(days=4000)])
def test_bad_spans(span: timedelta) -> None:
    with pytest.raises(IngestParameterError, match="span"):
        validate_params(SETTINGS, 10, 1, "2026-01-01T00:00:00Z", span=span)
