"""The streaming scorer's pure parts: its config section, the alert de-duplication and the topic payload."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from shoplake.config import Settings
from shoplake.ml.stream_scoring import ALERT_COLUMNS, alert_messages, alerts_of, append_alerts, new_alerts
from shoplake.streaming.config import StreamingConfigError, load_streaming_config, resolve

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
    assert resolve({"pipeline": {"continuous": ["silver", "scorer"]}}, settings).continuous_stages == (
        "silver",
        "scorer",
    )


def test_bad_scorer_values_are_named(settings: Settings) -> None:
    with pytest.raises(StreamingConfigError) as err:
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
