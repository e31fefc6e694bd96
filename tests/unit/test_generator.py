"""The simulated world: determinism, exact counts, fraud mix, schema validity and absence of label leaks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import fastavro.validation
import numpy as np
import pandas as pd
import pytest

from shoplake.contracts import schemas
from shoplake.ingestion import vocab
from shoplake.ingestion.generator import PATTERNS, GeneratorConfig, TransactionBatch, build_world, generate

pytestmark = pytest.mark.unit

START = datetime(2026, 2, 1, tzinfo=UTC)


def _columns(batches: list[TransactionBatch]) -> dict[str, Any]:
    return {
        f: np.concatenate([getattr(b, f) for b in batches])
        for f in TransactionBatch.__dataclass_fields__
        if f != "run_prefix"
    }


@cache
def _world_frame(n: int = 150_000) -> pd.DataFrame:
    """One moderately large run shared by the statistical tests (generated once per session)."""
    return pd.concat([b.to_pandas() for b in generate(n, 5, START, "stats")], ignore_index=True)


def test_same_inputs_give_identical_batches_and_ids() -> None:
    a = list(generate(30_000, 7, START, "run-1", config=GeneratorConfig(chunk_size=10_000)))
    b = list(generate(30_000, 7, START, "run-1", config=GeneratorConfig(chunk_size=10_000)))
    ca, cb = _columns(a), _columns(b)
    for name in ca:
        np.testing.assert_array_equal(ca[name], cb[name], err_msg=name)
    assert a[0].transaction_ids() == b[0].transaction_ids()


def test_run_key_changes_ids_and_draws_but_not_the_world() -> None:
    a = next(generate(5_000, 7, START, "run-1"))
    b = next(generate(5_000, 7, START, "run-2"))
    assert set(a.transaction_ids()).isdisjoint(b.transaction_ids())
    assert not np.array_equal(a.customer, b.customer)
    world_1, world_2 = build_world(7, GeneratorConfig()), build_world(7, GeneratorConfig())
    np.testing.assert_array_equal(world_1.home, world_2.home)
    assert not np.array_equal(world_1.home, build_world(8, GeneratorConfig()).home)


def test_exact_count_chunking_sequence_and_time_order() -> None:
    span = timedelta(days=2)
    batches = list(generate(25_001, 3, START, "k", span=span, config=GeneratorConfig(chunk_size=10_000)))
    assert [len(b) for b in batches] == [10_000, 10_000, 5_001]
    cols = _columns(batches)
    np.testing.assert_array_equal(cols["seq"], np.arange(25_001))
    t = cols["event_time_ms"]
    assert (np.diff(t) >= 0).all()
    start_ms = int(START.timestamp() * 1000)
    assert t.min() >= start_ms and t.max() < start_ms + span.total_seconds() * 1000
    ids = batches[0].transaction_ids()
    assert ids[0].startswith("tx-") and len(set(ids)) == len(ids) and len(ids[0]) == 32


def test_fraud_episodes_carry_across_chunk_boundaries() -> None:
    """Pending events of an episode started in one chunk land in the next one (state carried over)."""
    batches = list(generate(60_000, 9, START, "carry", config=GeneratorConfig(chunk_size=2_000)))
    carried = 0
    for prev, nxt in itertools.pairwise(batches):
        prev_devices = set(prev.device[prev.is_fraud].tolist())
        carried += len(prev_devices & set(nxt.device[nxt.is_fraud].tolist()))
    assert carried > 0


def test_fraud_rate_and_pattern_mix() -> None:
    df = _world_frame()
    rate = df.is_fraud.mean()
    assert 0.01 <= rate <= 0.03
    assert (df.fraud_pattern.notna() == df.is_fraud).all()
    shares = df[df.is_fraud].fraud_pattern.value_counts(normalize=True)
    mix = GeneratorConfig().pattern_mix
    total = sum(mix.values())
    for pattern in PATTERNS:
        assert 0.5 * mix[pattern] / total <= shares[pattern] <= 1.6 * mix[pattern] / total, pattern


def test_every_record_matches_the_avro_schema() -> None:
    batch = next(generate(20_000, 13, START, "valid"))
    assert fastavro.validation.validate_many(batch.to_records(), schemas.parsed_schema(), raise_errors=True)


def test_no_field_value_identifies_the_label_on_its_own() -> None:
    """Every common value of every non-label field occurs for legit transactions too."""
    df = _world_frame()
    categorical = [
        "merchant_category", "merchant_country", "currency", "payment_method",
        "channel", "device_type", "ip_country", "status",
    ]  # fmt: skip
    for column in categorical:
        stats = df.groupby(column).is_fraud.agg(["mean", "size"])
        common = stats[stats["size"] >= 30]
        assert (common["mean"] < 0.9).all(), (column, common["mean"].max())
    # Amounts of every pattern overlap the legit range; fraud is not confined to special hours.
    legit = df[~df.is_fraud]
    lo, hi = legit.amount_cents.quantile([0.001, 0.999])
    for _, group in df[df.is_fraud].groupby("fraud_pattern"):
        assert group.amount_cents.between(lo, hi).mean() > 0.5
    assert df[df.is_fraud].event_time.dt.hour.nunique() == 24


def _point_in_time_features(df: pd.DataFrame) -> pd.DataFrame:
    """Features computable from earlier transactions only (what the ML issue will build properly)."""
    df = df.sort_values(["event_time", "transaction_id"]).reset_index(drop=True)
    ts = df.event_time.astype("int64") // 10**6
    log_amount = np.log(df.amount_cents)
    by_customer = df.groupby("customer_id", sort=False)
    n_prev = by_customer.cumcount()
    mean_prev = (log_amount.groupby(df.customer_id).cumsum() - log_amount) / n_prev.replace(0, np.nan)
    since_prev = (ts - ts.groupby(df.customer_id).shift()).fillna(1e12)
    return pd.DataFrame(
        {
            "amount_vs_history": (log_amount - mean_prev).fillna(0),
            "log_amount": log_amount,
            "new_device": (df.groupby(["customer_id", "device_id"]).cumcount() == 0) & (n_prev > 0),
            "new_country": (df.groupby(["customer_id", "ip_country"]).cumcount() == 0) & (n_prev > 0),
            "minutes_since_prev": np.log1p(since_prev / 60_000),
            "hour": df.event_time.dt.hour,
            "n_prev": n_prev,
            "is_fraud": df.is_fraud,
        }
    )


def test_fraud_is_learnable_out_of_time_but_not_trivially() -> None:
    """A small tree on point-in-time features separates fraud on a later period; legit noise exists."""
    from sklearn.metrics import f1_score
    from sklearn.tree import DecisionTreeClassifier

    df = _world_frame()
    feats = _point_in_time_features(df)
    warm = feats[feats.n_prev >= 3]
    cut = int(len(warm) * 0.6)
    train, test = warm.iloc[:cut], warm.iloc[cut:]
    x_cols = [c for c in feats.columns if c != "is_fraud"]
    tree = DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, random_state=0)
    tree.fit(train[x_cols], train.is_fraud)
    f1 = f1_score(test.is_fraud, tree.predict(test[x_cols]))
    assert f1 >= 0.6, f1
    legit = warm[~warm.is_fraud]
    # Legit novelty (new phones, holidays, big purchases) keeps single rules from being perfect.
    assert legit.new_device.mean() > 0.005
    assert legit.new_country.mean() > 0.001
    assert (legit.amount_vs_history > np.log(4)).mean() > 0.002
    fraud = warm[warm.is_fraud]
    assert fraud.new_device.mean() > 5 * legit.new_device.mean()


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        next(generate(0, 1, START, "k"))
    with pytest.raises(ValueError, match="UTC-aware"):
        next(generate(10, 1, datetime(2026, 1, 1), "k"))  # naive on purpose
    with pytest.raises(ValueError, match="pattern_mix"):
        GeneratorConfig(pattern_mix={"made_up": 1.0})


def test_vocabularies_are_consistent() -> None:
    assert len(vocab.COUNTRY_CURRENCY) == len(vocab.HOME_COUNTRIES)
    assert len(vocab.CATEGORY_SHARE) == len(vocab.CATEGORY_AMOUNT) == len(vocab.CATEGORIES)
    assert vocab.FRAUD_PATTERNS[0] is None and set(vocab.FRAUD_PATTERNS[1:]) == set(PATTERNS)
