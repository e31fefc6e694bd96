"""The streaming scorer's pure parts: its config section, the alert de-duplication and the topic payload."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from shoplake.config import ConfigError, Settings
from shoplake.ingestion.generator import GeneratorConfig
from shoplake.ml import sample_data
from shoplake.ml.features import FeatureConfig, build_features
from shoplake.ml.stream_scoring import (
    ALERT_COLUMNS,
    SilverHistory,
    alert_messages,
    alerts_of,
    append_alerts,
    new_alerts,
)
from shoplake.pipeline.config import load_streaming_config
from tests.unit.config.streaming import resolve

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"DELTA_BASE_PATH": str(tmp_path / "delta"), "SHOPLAKE_HOME": str(tmp_path / "home")})


def test_scorer_is_opt_in_and_configured_by_the_shipped_file(settings: Settings, tmp_path: Path) -> None:
    cfg = load_streaming_config(settings)
    assert "scorer" not in cfg.continuous_stages
    assert cfg.gold_fraud_alerts_path == tmp_path / "delta/gold/fraud_alerts"
    assert cfg.alerts_topic == "ecommerce.fraud-alerts"
    assert cfg.checkpoint("scorer") == tmp_path / "home/checkpoints/scorer"
    assert resolve({"pipeline": {"continuous": ["gold", "scorer"]}}, settings).continuous_stages == ("gold", "scorer")


def test_bad_scorer_values_are_named(settings: Settings) -> None:
    with pytest.raises(ConfigError) as err:
        resolve({"scorer": {"alerts_topic": "alerts topic!", "max_files_per_trigger": 0}}, settings)
    assert "scorer.alerts_topic" in str(err.value) and "scorer.max_files_per_trigger" in str(err.value)


def _scored(ids: list[str], flagged: list[bool]) -> pa.Table:
    n = len(ids)
    when = datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
    return pa.table(
        {
            "transaction_id": ids,
            "event_time": pa.array([when] * n, pa.timestamp("us", tz="UTC")),
            "customer_id": ["C1"] * n,
            "merchant_id": ["M1"] * n,
            "amount_cents": pa.array([1234] * n, pa.int64()),
            "currency": ["EUR"] * n,
            "fraud_score": [0.9] * n,
            "is_flagged": flagged,
            "threshold": [0.5] * n,
            "model_version": ["3"] * n,
            "event_date": pa.array([date(2026, 2, 3)] * n, pa.date32()),
        }
    )


def test_only_flagged_rows_not_yet_stored_are_new(tmp_path: Path) -> None:
    path = tmp_path / "alerts"
    first = alerts_of(_scored(["a", "b", "c"], [True, False, True]))
    assert first.column_names == list(ALERT_COLUMNS)
    assert new_alerts(path, first).column("transaction_id").to_pylist() == ["a", "c"]  # no table yet
    append_alerts(path, first)
    replay = alerts_of(_scored(["a", "c", "d"], [True, True, True]))
    assert new_alerts(path, replay).column("transaction_id").to_pylist() == ["d"]


def test_topic_messages_are_keyed_json() -> None:
    [(key, value)] = alert_messages(alerts_of(_scored(["tx-1"], [True])))
    body = json.loads(value)
    assert key == "tx-1" and body["transaction_id"] == "tx-1"
    assert body["event_time"] == "2026-02-03T04:05:00+00:00" and body["event_date"] == "2026-02-03"
    assert body["fraud_score"] == 0.9 and body["model_version"] == "3"


def _silver_day(day: int, n: int) -> pa.Table:
    config = GeneratorConfig(n_customers=200, n_merchants=60, chunk_size=10_000)
    start = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(days=day)
    return pa.concat_tables(
        sample_data.silver_batches(n, 11, start, span=timedelta(days=1), run_key=f"unit-scorer-{day}", config=config)
    )


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({c: object for c in frame.columns if c != "event_time"}).reset_index(drop=True)


def test_kept_history_follows_new_silver_commits_like_a_fresh_read(tmp_path: Path) -> None:
    """The scorer's cached silver (customer rows + label state) equals reading silver afresh after appends."""
    from deltalake import write_deltalake

    silver = tmp_path / "silver"
    config = FeatureConfig(history=timedelta(days=7), label_delay=timedelta(hours=12), risk_window=timedelta(days=2))
    write_deltalake(str(silver), _silver_day(0, 3_000), partition_by=["event_date"])
    for day in range(1, 5):
        write_deltalake(str(silver), _silver_day(day, 3_000), mode="append", partition_by=["event_date"])
    kept = SilverHistory(silver)

    def batch_of(day: int) -> tuple[pa.Array, datetime, datetime]:
        rows = _silver_day(day, 3_000).sort_by("event_time").slice(100, 50)
        times = pc.min_max(rows.column("event_time"))
        end = times["max"].as_py() + timedelta(microseconds=1)
        return pc.unique(rows.column("customer_id")), times["min"].as_py(), end

    for day in (4, 5, 6):
        if day > 4:  # a new commit lands between batches: only its file is read
            write_deltalake(str(silver), _silver_day(day, 3_000), mode="append", partition_by=["event_date"])
        customers, start, end = batch_of(day)
        fresh = SilverHistory(silver)
        pd.testing.assert_frame_equal(
            _sorted(kept.frame(customers, start, end, config)), _sorted(fresh.frame(customers, start, end, config))
        )
        probe = fresh.frame(customers, start, end, config)
        target = (probe["event_time"] >= pd.Timestamp(start)).to_numpy()
        expected = build_features(probe, config, target=target, labels=fresh.labels(start, end, config))
        got = build_features(probe, config, target=target, labels=kept.labels(start, end, config))
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        assert (got["merchant_labelled"] > 0).any()
