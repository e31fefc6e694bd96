"""Point-in-time correctness of the fraud features: only the strict past, labels only through the delay."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from shoplake.ingestion.generator import GeneratorConfig, generate
from shoplake.ml.features import (
    FEATURE_COLUMNS,
    NO_PREVIOUS_SECONDS,
    FeatureConfig,
    build_features,
)

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
CONFIG = FeatureConfig()
RISK_COLUMNS = ["merchant_risk", "merchant_risk_recent", "category_risk"]


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    """12 days of a small generated world: customers repeat often, fraud is present."""
    config = GeneratorConfig(n_customers=300, n_merchants=60, chunk_size=10_000)
    batches = generate(24_000, 7, START, "unit-features", span=timedelta(days=12), config=config)
    frame = pd.concat([b.to_pandas() for b in batches], ignore_index=True)
    return frame.sort_values(["event_time", "transaction_id"], ignore_index=True)


def _tx(rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """Hand-made transactions: every field defaults to a plain domestic card purchase."""
    base = {
        "customer_id": "C1",
        "merchant_id": "M1",
        "merchant_category": "grocery",
        "merchant_country": "US",
        "amount_cents": 1000,
        "currency": "USD",
        "payment_method": "card",
        "channel": "web",
        "device_id": "d1",
        "device_type": "desktop",
        "ip_country": "US",
        "status": "approved",
        "is_fraud": False,
    }
    frame = pd.DataFrame([base | dict(r) for r in rows])
    frame["event_time"] = pd.to_datetime(frame["minute"].astype(float) * 60_000, unit="ms", utc=True) + pd.Timestamp(
        START
    ).tz_convert("UTC").value * pd.Timedelta(1, "ns")
    return frame.drop(columns=["minute"])


@pytest.mark.unit
def test_future_events_never_change_past_features(world: pd.DataFrame) -> None:
    cut = pd.Timestamp(START + timedelta(days=8))
    past = world[world["event_time"] < cut]
    full = build_features(world, CONFIG)
    truncated = build_features(past, CONFIG)
    pd.testing.assert_frame_equal(full.loc[past.index], truncated)


@pytest.mark.unit
def test_appending_a_wild_future_event_changes_nothing_before_it() -> None:
    rows = [{"minute": m, "amount_cents": 1000 + m} for m in (0, 30, 90, 600)]
    before = build_features(_tx(rows))
    wild = {"minute": 601, "amount_cents": 99_999_999, "device_id": "new", "ip_country": "NG", "is_fraud": True}
    after = build_features(_tx([*rows, wild]))
    pd.testing.assert_frame_equal(before, after.iloc[:4])


@pytest.mark.unit
def test_simultaneous_events_are_not_each_others_past() -> None:
    features = build_features(_tx([{"minute": 0}, {"minute": 5}, {"minute": 5}]))
    assert features["cust_count_1h"].tolist() == [0, 1, 1]
    assert features["seconds_since_prev"].tolist() == [NO_PREVIOUS_SECONDS, 300, 300]


@pytest.mark.unit
def test_velocity_and_novelty_count_only_the_window_before() -> None:
    rows: list[dict[str, object]] = [
        {"minute": 0},
        {"minute": 5, "device_id": "d2", "ip_country": "FR"},
        {"minute": 20},
        {"minute": 120, "amount_cents": 100_000},
    ]
    f = build_features(_tx(rows))
    assert f["cust_count_10m"].tolist() == [0, 1, 0, 0]
    assert f["cust_count_1h"].tolist() == [0, 1, 2, 0]
    assert f["cust_count_24h"].tolist() == [0, 1, 2, 3]
    assert f["cust_amount_24h"].tolist() == pytest.approx([0, 10, 20, 30])
    assert f["device_count_history"].tolist() == [0, 0, 1, 2]  # d2 was new at minute 5
    assert f["country_count_history"].tolist() == [0, 0, 1, 2]  # FR at minute 5 is not US history
    assert f["ip_country_changed"].tolist() == [0, 1, 1, 0]
    assert f["amount_log_ratio_mean"].iloc[3] > 2  # 1000 USD against a 10 USD habit
    assert f["seconds_since_prev"].iloc[3] == 100 * 60


@pytest.mark.unit
def test_history_horizon_bounds_every_lookback() -> None:
    config = FeatureConfig(history=timedelta(days=7))
    minutes = [0, 8 * 24 * 60]  # the second event is 8 days after the first
    f = build_features(_tx([{"minute": m} for m in minutes]), config)
    assert f["cust_count_history"].tolist() == [0, 0]
    assert f["device_count_history"].tolist() == [0, 0]


@pytest.mark.unit
def test_labels_younger_than_the_delay_never_reach_a_feature(world: pd.DataFrame) -> None:
    probe = pd.Timestamp(START + timedelta(days=10))
    probe_end = probe + pd.Timedelta(hours=6)
    is_probe_window = (world["event_time"] >= probe) & (world["event_time"] < probe_end)
    # Flip every label that is younger than the delay for at least the last probe row, and every later one.
    young = world["event_time"] >= probe_end - pd.Timedelta(CONFIG.label_delay)
    flipped = world.assign(is_fraud=np.where(young, ~world["is_fraud"].astype(bool), world["is_fraud"]))
    original = build_features(world, CONFIG, target=is_probe_window.to_numpy())
    changed = build_features(flipped, CONFIG, target=is_probe_window.to_numpy())
    pd.testing.assert_frame_equal(original, changed)


@pytest.mark.unit
def test_old_labels_enter_only_the_risk_features(world: pd.DataFrame) -> None:
    probe = pd.Timestamp(START + timedelta(days=10))
    target = (world["event_time"] >= probe).to_numpy()
    old = world["event_time"] < probe - pd.Timedelta(CONFIG.label_delay) - pd.Timedelta(hours=1)
    flipped = world.assign(is_fraud=np.where(old, ~world["is_fraud"].astype(bool), world["is_fraud"]))
    original = build_features(world, CONFIG, target=target)
    changed = build_features(flipped, CONFIG, target=target)
    others = [c for c in FEATURE_COLUMNS if c not in RISK_COLUMNS]
    pd.testing.assert_frame_equal(original[others], changed[others])
    assert not np.allclose(original["merchant_risk"], changed["merchant_risk"])


@pytest.mark.unit
def test_unknown_labels_count_for_nothing_and_fraud_pattern_is_never_read(world: pd.DataFrame) -> None:
    without_pattern = world.drop(columns=["fraud_pattern"])
    pd.testing.assert_frame_equal(build_features(world, CONFIG), build_features(without_pattern, CONFIG))
    unlabelled = world.assign(is_fraud=pd.array([None] * len(world), dtype="boolean"))
    f = build_features(unlabelled, CONFIG)
    assert (f["merchant_labelled"] == 0).all()
    assert (f["merchant_risk"] == 0).all()


@pytest.mark.unit
def test_scoring_a_target_slice_equals_training_features(world: pd.DataFrame) -> None:
    target = (world["event_time"] >= pd.Timestamp(START + timedelta(days=9))).to_numpy()
    everything = build_features(world, CONFIG)
    sliced = build_features(world, CONFIG, target=target)
    pd.testing.assert_frame_equal(everything[target], sliced)


@pytest.mark.unit
def test_row_order_of_the_input_does_not_matter(world: pd.DataFrame) -> None:
    shuffled = world.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(
        build_features(world, CONFIG), build_features(shuffled, CONFIG).loc[world.index], check_like=True
    )


@pytest.mark.unit
def test_categorical_input_gives_the_same_features(world: pd.DataFrame) -> None:
    as_categories = world.astype({c: "category" for c in ("customer_id", "merchant_id", "device_id", "ip_country")})
    pd.testing.assert_frame_equal(build_features(world, CONFIG), build_features(as_categories, CONFIG))


@pytest.mark.unit
def test_bad_input_is_rejected_before_work() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        build_features(pd.DataFrame({"event_time": []}))
    naive = _tx([{"minute": 0}])
    naive["event_time"] = naive["event_time"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="timezone-aware"):
        build_features(naive)
    with pytest.raises(ValueError, match="history must cover"):
        FeatureConfig(history=timedelta(days=1))


@pytest.mark.unit
def test_a_label_becomes_visible_exactly_when_it_is_older_than_the_delay() -> None:
    delay_minutes = int(CONFIG.label_delay.total_seconds() // 60)
    rows = [
        {"minute": 0, "is_fraud": True, "customer_id": "A"},
        {"minute": delay_minutes, "customer_id": "B"},  # the label is exactly `delay` old: not yet known
        {"minute": delay_minutes + 1, "customer_id": "C"},
    ]
    f = build_features(_tx(rows))
    assert f["merchant_labelled"].tolist() == [0, 0, 1]
    assert f["merchant_risk"].iloc[1] == 0
    assert f["merchant_risk"].iloc[2] > 0
