"""Point-in-time correctness of the fraud features: only the strict past, labels only through the delay."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from shoplake.ingestion.generator import GeneratorConfig, generate
from shoplake.ml.features import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    NO_PREVIOUS_SECONDS,
    FeatureConfig,
    LabelRates,
    build_features,
    group_time_order,
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
    scoring_view = build_features(as_categories, CONFIG, categorical=True)  # Categorical columns, same strings
    assert all(isinstance(scoring_view[c].dtype, pd.CategoricalDtype) for c in CATEGORICAL_FEATURES)
    pd.testing.assert_frame_equal(
        scoring_view.astype({c: object for c in CATEGORICAL_FEATURES}), build_features(world, CONFIG)
    )


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


def _risk_by_definition(world: pd.DataFrame, config: FeatureConfig) -> pd.DataFrame:
    """The risk features row by row, straight from their definition (slow; the reference for the fast path)."""
    t = world["event_time"].astype("int64").to_numpy() // 1_000_000
    known = world["is_fraud"].notna().to_numpy()
    fraud = world["is_fraud"].fillna(False).to_numpy(dtype=bool)
    merchant, category = world["merchant_id"].to_numpy(), world["merchant_category"].to_numpy()
    delay = int(config.label_delay.total_seconds() * 1000)
    long_risk = delay + int(config.risk_window.total_seconds() * 1000)
    recent = delay + int(config.recent_risk_window.total_seconds() * 1000)
    s = config.risk_smoothing
    rows = []
    for i in range(len(world)):

        def counts(same: np.ndarray, back: int, now: int = t[i]) -> tuple[int, int]:
            inside = known & same & (t >= now - back) & (t < now - delay)
            return int(inside.sum()), int((inside & fraud).sum())

        n_all, f_all = counts(np.ones(len(world), dtype=bool), long_risk)
        base = f_all / n_all if n_all else 0.0
        n_m, f_m = counts(merchant == merchant[i], long_risk)
        n_r, f_r = counts(merchant == merchant[i], recent)
        n_c, f_c = counts(category == category[i], long_risk)
        rows.append(
            {
                "merchant_risk": (f_m + s * base) / (n_m + s),
                "merchant_risk_recent": (f_r + s * base) / (n_r + s),
                "merchant_labelled": float(n_m),
                "category_risk": (f_c + s * base) / (n_c + s),
            }
        )
    return pd.DataFrame(rows, index=world.index)


@pytest.mark.unit
def test_risk_features_equal_their_definition_bit_for_bit(world: pd.DataFrame) -> None:
    sample = world.iloc[::40]  # every 40th row of 12 days: still hundreds of labelled events per window
    expected = _risk_by_definition(sample, CONFIG)
    got = build_features(sample, CONFIG)[expected.columns]
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


@pytest.mark.unit
def test_label_state_from_everyone_serves_a_frame_of_a_few_customers(world: pd.DataFrame) -> None:
    """The streaming scorer's shape: own history only, labels from a shared state - same features, exactly."""
    customers = world["customer_id"].drop_duplicates().iloc[:25]
    late = (world["event_time"] >= pd.Timestamp(START + timedelta(days=10))).to_numpy()
    own = world[world["customer_id"].isin(customers).to_numpy()]
    state = LabelRates.from_frame(world.astype({"merchant_id": "category"}))
    target = late[world["customer_id"].isin(customers).to_numpy()]
    expected = build_features(world, CONFIG, target=late & world["customer_id"].isin(customers).to_numpy())
    got = build_features(own, CONFIG, target=target, labels=state)
    pd.testing.assert_frame_equal(
        got[[*RISK_COLUMNS, "merchant_labelled"]], expected[[*RISK_COLUMNS, "merchant_labelled"]], check_exact=True
    )
    pd.testing.assert_frame_equal(got, expected)  # customer features: the same up to float rounding of sums


@pytest.mark.unit
def test_group_order_shortcut_is_the_sorted_key_order() -> None:
    rng = np.random.default_rng(5)
    t = np.sort(rng.integers(0, 50, 5_000))  # many ties
    for groups in (7, 70_000):  # one 16-bit pass, two passes
        group = rng.integers(0, groups, 5_000)
        expected = np.argsort(group * 100 + t, kind="stable")
        order = group_time_order(group, t)
        assert order is not None and np.array_equal(order, expected)
    assert group_time_order(group, t[::-1].copy()) is None  # unsorted times: the caller sorts the keys
