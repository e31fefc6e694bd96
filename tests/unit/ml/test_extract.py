"""The Delta extract (window filter, canonical order, clear errors) and the feature-params round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from shoplake.ml import sample_data
from shoplake.ml.extract import ExtractError, Window, parse_utc, read_transactions
from shoplake.ml.features import FeatureConfig
from shoplake.ml.registry import feature_config_from_params

START = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def silver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("delta") / "silver"
    batches = sample_data.silver_batches(6_000, 5, START, span=timedelta(days=3))
    assert sample_data.write_silver_delta(path, batches) == 6_000
    return path


@pytest.mark.unit
def test_window_is_half_open_and_rows_are_in_canonical_order(silver: Path) -> None:
    start, end = START + timedelta(days=1), START + timedelta(days=2)
    frame = read_transactions(silver, start, end)
    assert len(frame) > 1000
    assert frame["event_time"].min() >= pd.Timestamp(start)
    assert frame["event_time"].max() < pd.Timestamp(end)
    keys = list(zip(frame["event_time"], frame["transaction_id"].astype(str), strict=True))
    assert keys == sorted(keys)
    everything = read_transactions(silver, START, START + timedelta(days=3))
    inside = everything[
        (everything["event_time"] >= pd.Timestamp(start)) & (everything["event_time"] < pd.Timestamp(end))
    ]
    assert inside["transaction_id"].astype(str).tolist() == frame["transaction_id"].astype(str).tolist()


@pytest.mark.unit
def test_missing_table_and_bad_windows_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ExtractError, match="no Delta table"):
        read_transactions(tmp_path / "nothing", START, START + timedelta(days=1))
    with pytest.raises(ValueError, match="after start"):
        Window(START, START)
    with pytest.raises(ValueError, match="UTC-aware"):
        Window(datetime(2026, 1, 1), datetime(2026, 1, 2))


@pytest.mark.unit
def test_parse_utc_accepts_dates_and_offsets() -> None:
    assert parse_utc("2026-01-02") == datetime(2026, 1, 2, tzinfo=UTC)
    assert parse_utc("2026-01-02T03:00:00+02:00") == datetime(2026, 1, 2, 1, tzinfo=UTC)


@pytest.mark.unit
def test_feature_config_survives_the_run_params() -> None:
    config = FeatureConfig(history=timedelta(days=9), label_delay=timedelta(hours=30), risk_smoothing=12.5)
    assert feature_config_from_params(config.as_params()) == config
    assert feature_config_from_params({}) == FeatureConfig()
