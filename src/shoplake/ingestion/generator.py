"""A seedable, vectorised simulation of an e-commerce payment stream with labelled fraud.

Why it looks like this:

* **A world, then a stream.** ``seed`` alone fixes the customers (home country, spend level, devices,
  signup date, travel habits) and merchants (country, category, popularity, risk). Every ingestion run of
  the same seed therefore talks about the same people, so behavioural history accumulates across runs.
  The run (``run_key`` + ``start``) only decides *which* transactions happen.
* **Stateless habits.** Which device a customer uses, whether they are travelling this week, which
  merchants are compromised in a window - all are hashes of (seed, customer/merchant, time bucket). They
  are identical in every chunk and every run without carrying state, and they produce realistic *legit*
  novelty (a new phone, a holiday abroad) that fraud features must not confuse with an attack.
* **Fraud as episodes.** Each named pattern is an episode (a card-testing burst, a takeover, a spree...)
  whose transactions may spill into the next chunk; those pending events are the state carried between
  chunks. Fraud is recognisable only from point-in-time behaviour (velocity, amount versus the customer's
  history, device/country novelty, merchant risk, hour) - never from a field that encodes the label.
* **Chunks of columns.** :func:`generate` yields :class:`TransactionBatch` objects of NumPy columns (codes
  for categorical fields), so 10M transactions never sit in memory and the Avro encoder can work on whole
  columns.

Determinism: the same (seed, run_key, start, span, num_transactions, config) yields identical batches,
including transaction ids ``tx-<16 hex of run_key>-<12-digit sequence>``.

What reveals each pattern (point in time, per customer unless noted) - and what blurs it:

====================  ============================================  ==========================================
pattern               signal                                        overlap with legit behaviour
====================  ============================================  ==========================================
card_testing          3-12 charges within minutes, one unseen       legit micro charges (0.5-5 USD at digital
                      device, mostly digital-goods merchants,       merchants) and in-app sessions; a third
                      tiny amounts, many declines                   of testers use 3-25 USD at local shops
account_takeover      unseen device, often an unseen (fraud-        new phones, holidays, big purchases; half
                      source) country, 2-10x the usual amount       come through a proxy in the home country
stolen_card           2-9 charges over hours, unseen device,        big purchases (more at night), sessions
                      1.2-6x the usual amount, mostly domestic
merchant_compromise   a merchant's recent fraud rate (with label    first days of a window are invisible;
                      delay), 1-5x amount, an unseen device         one charge per victim, no velocity
geo_velocity          home purchase, then minutes later another     holidays (but not minutes after a home
                      continent; half the time the cloned device    purchase)
====================  ============================================  ==========================================

Two things apply to every pattern (``GeneratorConfig``): *disguised* episodes (15 %) run on the victim's
own device, from their home country, at local merchants and 0.6-2x their usual basket - only velocity and
timing remain; *unreported* episodes (4 %) never get a chargeback, so they are labelled legit
(``is_fraud`` false, no pattern) - label noise every real fraud data set has. Legit customers, for their
part, use one-off devices (2 %), travel, make big purchases (1.5 %, three times as often at night) and micro
charges (3 %).

Device/country novelty works best as *prior uses* (how often this customer used this device / IP
country before), not as a first-use flag: the second charge of a burst reuses the attacker's device.
A RandomForest on the features of :mod:`shoplake.ml.features` learns the default world well out of time,
but not perfectly: disguised and unreported episodes stay hard or impossible to see (BENCHMARKS.md, "ML").
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from shoplake.ingestion import vocab

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]
Bool = npt.NDArray[np.bool_]

MS_PER_HOUR: Final = 3_600_000
MS_PER_DAY: Final = 24 * MS_PER_HOUR
MS_PER_WEEK: Final = 7 * MS_PER_DAY
MS_PER_MINUTE: Final = 60_000

# Relative activity per UTC hour (customers mostly in Europe and North America) and per weekday (Mon=0).
LEGIT_HOURLY: Final = np.array(
    [0.45, 0.35, 0.25, 0.2, 0.2, 0.25, 0.4, 0.6, 0.8, 0.95, 1.0, 1.05,
     1.1, 1.15, 1.2, 1.25, 1.3, 1.35, 1.4, 1.45, 1.4, 1.25, 1.0, 0.7],
    dtype=np.float64,
)  # fmt: skip
# Fraudsters work around the clock with a bump in the European/American night.
FRAUD_HOURLY: Final = np.array(
    [1.6, 1.8, 1.9, 1.9, 1.8, 1.6, 1.3, 1.0, 0.8, 0.7, 0.7, 0.7,
     0.7, 0.7, 0.7, 0.7, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0, 1.2, 1.4],
    dtype=np.float64,
)  # fmt: skip
WEEKDAY: Final = np.array([0.95, 0.95, 0.97, 1.0, 1.08, 1.15, 1.1], dtype=np.float64)

PATTERNS: Final = tuple(p for p in vocab.FRAUD_PATTERNS if p is not None)
_SALT: Final = {name: i + 1 for i, name in enumerate(("signup", "travel", "dest", "device", "ip", "compromise"))}
_MOBILE, _DESKTOP = 0, 1  # device slots: 0 phone, 1 computer, 2 tablet
_DEVICE_PERIOD_DAYS: Final = (300.0, 700.0, 500.0)  # how long a customer keeps a phone / computer / tablet


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of the simulated world; defaults give ~2 % fraud that a point-in-time model can learn."""

    n_customers: int = 20_000
    n_merchants: int = 2_000
    transactions_per_day: float = 50_000.0
    fraud_rate: float = 0.02
    pattern_mix: Mapping[str, float] = field(
        default_factory=lambda: {
            "card_testing": 0.25,
            "account_takeover": 0.2,
            "stolen_card": 0.25,
            "merchant_compromise": 0.15,
            "geo_velocity": 0.15,
        }
    )
    chunk_size: int = 50_000
    # Legit noise that makes the problem realistic rather than trivial.
    new_device_noise: float = 0.02  # legit purchase from a one-off device (friend's laptop, new browser)
    big_purchase_rate: float = 0.015  # legit purchase 3-12x the customer's norm (x3 at night: 0-6 UTC)
    micro_purchase_rate: float = 0.03  # legit 0.5-5 USD in-app/top-up charge at a digital-goods merchant
    session_rate: float = 0.08  # legit purchase followed by 1-4 more within half an hour (in-app buys)
    # Fraud that looks ordinary, and fraud nobody reports: the overlap a real model has to live with.
    disguised_fraud_share: float = 0.15  # episodes on the victim's own device, home country, plausible amounts
    unreported_fraud_share: float = 0.04  # episodes whose chargeback never comes: labelled legit
    compromise_window_days: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if self.n_customers < 10 or self.n_merchants < 50:
            problems.append("need at least 10 customers and 50 merchants")
        if not 0 <= self.fraud_rate < 0.5:
            problems.append("fraud_rate must be in [0, 0.5)")
        shares = ("new_device_noise", "big_purchase_rate", "micro_purchase_rate", "session_rate")
        if any(not 0 <= getattr(self, s) <= 1 for s in (*shares, "disguised_fraud_share", "unreported_fraud_share")):
            problems.append("noise rates and fraud shares must be in [0, 1]")
        if 3 * self.big_purchase_rate + self.micro_purchase_rate > 1:
            problems.append("3 x big_purchase_rate (its night rate) + micro_purchase_rate must not exceed 1")
        if self.transactions_per_day <= 0 or self.chunk_size < 1:
            problems.append("transactions_per_day and chunk_size must be positive")
        unknown = set(self.pattern_mix) - set(PATTERNS)
        if unknown or any(v < 0 for v in self.pattern_mix.values()) or sum(self.pattern_mix.values()) <= 0:
            problems.append(f"pattern_mix must give non-negative weights to {PATTERNS}")
        if problems:
            raise ValueError("invalid GeneratorConfig: " + "; ".join(problems))


@dataclass(frozen=True)
class TransactionBatch:
    """One chunk of transactions as columns; categorical fields are codes into :mod:`vocab` tuples."""

    run_prefix: str
    seq: I64
    event_time_ms: I64
    customer: I64
    merchant: I64
    merchant_category: I8
    merchant_country: I8
    amount_cents: I64
    currency: I8
    payment_method: I8
    channel: I8
    device: U64
    device_type: I8
    ip: I64
    ip_country: I8
    status: I8
    is_fraud: Bool
    fraud_pattern: I8

    def __len__(self) -> int:
        return len(self.seq)

    def transaction_ids(self) -> list[str]:
        return [f"tx-{self.run_prefix}-{s:012d}" for s in self.seq.tolist()]

    def to_records(self) -> list[dict[str, Any]]:
        """Plain dicts in the Avro contract's shape (slow: for tests, baselines and small samples)."""
        cols = self.to_columns()
        names = list(cols)
        return [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)]

    def to_columns(self) -> dict[str, list[Any]]:
        """Each contract field as a Python list, formatted independently of the vectorised encoder."""

        def names(values: tuple[str | None, ...], codes: I8) -> list[Any]:
            return [values[c] for c in codes.tolist()]

        return {
            "transaction_id": self.transaction_ids(),
            "event_time": self.event_time_ms.tolist(),
            "customer_id": [customer_id(c) for c in self.customer.tolist()],
            "merchant_id": [merchant_id(m) for m in self.merchant.tolist()],
            "merchant_category": names(vocab.CATEGORIES, self.merchant_category),
            "merchant_country": names(vocab.COUNTRIES, self.merchant_country),
            "amount_cents": self.amount_cents.tolist(),
            "currency": names(vocab.CURRENCIES, self.currency),
            "payment_method": names(vocab.PAYMENT_METHODS, self.payment_method),
            "channel": names(vocab.CHANNELS, self.channel),
            "device_id": [f"dev-{d:016x}" for d in self.device.tolist()],
            "device_type": names(vocab.DEVICE_TYPES, self.device_type),
            "ip_address": [f"{i >> 24}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in self.ip.tolist()],
            "ip_country": names(vocab.COUNTRIES, self.ip_country),
            "status": names(vocab.STATUSES, self.status),
            "is_fraud": self.is_fraud.tolist(),
            "fraud_pattern": names(vocab.FRAUD_PATTERNS, self.fraud_pattern),
        }

    def to_pandas(self) -> Any:
        """A pandas DataFrame with the contract's columns (``event_time`` as UTC timestamps)."""
        pd: Any = importlib.import_module("pandas")  # imported lazily: only tests and analyses need it
        df = pd.DataFrame(self.to_columns())
        df["event_time"] = pd.to_datetime(df["event_time"], unit="ms", utc=True)
        return df


def customer_id(index: int) -> str:
    return f"C{index:08d}"


def merchant_id(index: int) -> str:
    return f"M{index:06d}"


def run_prefix(run_key: str) -> str:
    """16 hex digits naming a logical run inside its transaction ids."""
    return hashlib.sha256(run_key.encode("utf-8")).hexdigest()[:16]


# ---- hashing: stateless, vectorised pseudo-randomness keyed by (seed, entity, time bucket) -----------------
_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)
_MIX1: Final = np.uint64(0xBF58476D1CE4E5B9)
_MIX2: Final = np.uint64(0x94D049BB133111EB)


def _splitmix(x: U64) -> U64:
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def hash_mix(*parts: Any) -> U64:
    """A 64-bit hash of equally-shaped integer arrays/scalars, element-wise (SplitMix64 chaining)."""
    arrays = [np.atleast_1d(np.asarray(p)).astype(np.uint64) for p in parts]
    h = np.zeros(np.broadcast_shapes(*(a.shape for a in arrays)), dtype=np.uint64)
    for a in arrays:
        h = _splitmix(h ^ a)
    return h


def hash_unit(h: U64) -> F64:
    """Map 64-bit hashes to floats in [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


# ---- the world --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    """Customers and merchants of one seed; every array is indexed by customer or merchant number."""

    seed: int
    key: np.uint64
    home: I64
    spend_mu: F64  # log of the customer's typical basket in USD
    spend_sigma: F64
    activity_cdf: F64
    signup_ms: I64
    established: I64  # customers who signed up before the simulated era (fallback for too-early draws)
    travel_rate: F64  # probability of being abroad in a given week
    slot_cdf: F64  # (n, 3) cumulative probabilities of using mobile / desktop / tablet
    device_phase: F64  # (n, 3) phase of each slot's replacement cycle, in days
    preferred_payment: I64
    m_country: I64
    m_category: I64
    m_risk: F64  # 0..1, how attractive the merchant is to fraudsters
    m_country_cdf: F64  # popularity CDF per country, offset by the country number (see _pick_merchant)
    m_country_order: I64
    digital_cdf: F64
    digital_ids: I64
    goods_cdf: F64
    goods_ids: I64


def build_world(seed: int, config: GeneratorConfig) -> World:
    """Draw the customers and merchants of ``seed`` (independent of any run)."""
    rng = np.random.default_rng([seed, 0x5EED])
    n, m = config.n_customers, config.n_merchants
    home_p = np.array(vocab.HOME_COUNTRY_WEIGHTS) / sum(vocab.HOME_COUNTRY_WEIGHTS)
    home = rng.choice(len(vocab.HOME_COUNTRIES), size=n, p=home_p).astype(np.int64)
    activity = rng.lognormal(0.0, 0.8, size=n)
    era = datetime(2024, 1, 1, tzinfo=UTC)
    # 85 % of customers predate the simulated era; the rest sign up during 2024-2027.
    signup_days = np.where(rng.random(n) < 0.85, -rng.uniform(30, 2000, n), rng.uniform(0, 4 * 365, n))
    signup_ms = (_ms(era) + signup_days * MS_PER_DAY).astype(np.int64)
    has_desktop = rng.random(n) < 0.7
    has_tablet = rng.random(n) < 0.2
    slot_w = np.stack(
        [rng.uniform(0.4, 1.0, n), has_desktop * rng.uniform(0.2, 0.8, n), has_tablet * rng.uniform(0.1, 0.4, n)],
        axis=1,
    )
    slot_cdf = np.cumsum(slot_w / slot_w.sum(axis=1, keepdims=True), axis=1)
    device_phase = rng.uniform(0, 1, (n, 3)) * np.array(_DEVICE_PERIOD_DAYS)
    payment_p = np.array(vocab.PAYMENT_WEIGHTS) / sum(vocab.PAYMENT_WEIGHTS)

    m_country = rng.choice(len(vocab.HOME_COUNTRIES), size=m, p=home_p).astype(np.int64)
    cat_p = np.array(vocab.CATEGORY_SHARE) / sum(vocab.CATEGORY_SHARE)
    m_category = rng.choice(len(vocab.CATEGORIES), size=m, p=cat_p).astype(np.int64)
    risky = np.isin(m_category, [_cat("digital_goods"), _cat("gaming"), _cat("gift_cards"), _cat("electronics")])
    m_risk = np.clip(rng.beta(1.2, 6.0, m) + 0.25 * risky, 0, 1)
    popularity = rng.lognormal(0.0, 1.0, m)
    order = np.lexsort((np.arange(m), m_country))
    country_cdf = np.empty(m)
    for c in range(len(vocab.HOME_COUNTRIES)):
        idx = np.flatnonzero(m_country[order] == c)
        if idx.size:
            w = popularity[order][idx]
            country_cdf[idx] = c + np.cumsum(w) / w.sum() * (1 - 1e-12)
    digital_ids, digital_cdf = _pool(m_category, popularity * (0.3 + m_risk), ("digital_goods", "gaming", "gift_cards"))
    goods_ids, goods_cdf = _pool(m_category, popularity, ("electronics", "jewelry", "gift_cards", "fashion"))
    return World(
        seed=seed,
        key=np.uint64(int(hash_mix(seed, 0xC0FFEE)[0])),
        home=home,
        spend_mu=rng.normal(np.log(40.0), 0.55, n),
        spend_sigma=rng.uniform(0.35, 0.7, n),
        activity_cdf=np.cumsum(activity) / activity.sum(),
        signup_ms=signup_ms,
        established=np.flatnonzero(signup_ms < _ms(era)).astype(np.int64),
        travel_rate=rng.beta(1.5, 40.0, n),
        slot_cdf=slot_cdf,
        device_phase=device_phase,
        preferred_payment=rng.choice(len(vocab.PAYMENT_METHODS), size=n, p=payment_p).astype(np.int64),
        m_country=m_country,
        m_category=m_category,
        m_risk=m_risk,
        m_country_cdf=country_cdf,
        m_country_order=order.astype(np.int64),
        digital_cdf=digital_cdf,
        digital_ids=digital_ids,
        goods_cdf=goods_cdf,
        goods_ids=goods_ids,
    )


def _cat(name: str) -> int:
    return vocab.code(vocab.CATEGORIES, name)


def _pool(categories: I64, weights: F64, names: tuple[str, ...]) -> tuple[I64, F64]:
    ids = np.flatnonzero(np.isin(categories, [_cat(n) for n in names])).astype(np.int64)
    w = weights[ids]
    return ids, np.cumsum(w) / w.sum()


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


# ---- columns under construction ---------------------------------------------------------------------------
@dataclass
class _Rows:
    """Transactions being assembled (before sorting and sequencing); same fields as the batch."""

    t: I64
    customer: I64
    merchant: I64
    amount_usd: F64
    payment_method: I64
    channel: I64
    device: U64
    device_type: I64
    ip: I64
    ip_country: I64
    status: I64
    pattern: I64

    def __len__(self) -> int:
        return len(self.t)

    def take(self, idx: Any) -> _Rows:
        return _Rows(*(getattr(self, f.name)[idx] for f in fields(self)))

    @staticmethod
    def concat(parts: list[_Rows]) -> _Rows:
        return _Rows(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(_Rows)))


def _empty_rows() -> _Rows:
    i = np.zeros(0, dtype=np.int64)
    return _Rows(i, i, i, np.zeros(0), i, i, np.zeros(0, np.uint64), i, i, i, i, i)


# ---- generation -------------------------------------------------------------------------------------------
class _RunState:
    """Everything one run needs across chunks: the world, the time axis and pending fraud events."""

    def __init__(self, world: World, config: GeneratorConfig, start_ms: int, end_ms: int, run_key: str) -> None:
        self.world = world
        self.config = config
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.run_hash = int(hashlib.sha256(run_key.encode()).hexdigest()[:15], 16)
        self.pending = _empty_rows()
        hours = np.arange(start_ms // MS_PER_HOUR, -(-end_ms // MS_PER_HOUR), dtype=np.int64)
        overlap = np.minimum((hours + 1) * MS_PER_HOUR, end_ms) - np.maximum(hours * MS_PER_HOUR, start_ms)
        self.hours = hours
        self.legit_cdf = np.concatenate([[0.0], np.cumsum(_rhythm(hours, LEGIT_HOURLY) * overlap)])
        self.legit_cdf /= self.legit_cdf[-1]

    def time_at(self, q: F64) -> I64:
        """Invert the legit-activity CDF: fraction of the run's expected traffic -> event time (ms)."""
        i = np.clip(np.searchsorted(self.legit_cdf, q, side="right") - 1, 0, len(self.hours) - 1)
        lo, hi = self.legit_cdf[i], self.legit_cdf[i + 1]
        frac = np.where(hi > lo, (q - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
        t0 = np.maximum(self.hours[i] * MS_PER_HOUR, self.start_ms)
        t1 = np.minimum((self.hours[i] + 1) * MS_PER_HOUR, self.end_ms)
        return np.asarray(np.minimum(t0 + (frac * (t1 - t0)).astype(np.int64), self.end_ms - 1), dtype=np.int64)


def _rhythm(hours: I64, hourly: F64) -> F64:
    dow = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday (Mon=0)
    return np.asarray(hourly[hours % 24] * WEEKDAY[dow], dtype=np.float64)


def _sample_times(rng: np.random.Generator, n: int, t0: int, t1: int, hourly: F64) -> I64:
    """``n`` event times in [t0, t1) following an hour-of-day x weekday rhythm."""
    hours = np.arange(t0 // MS_PER_HOUR, -(-t1 // MS_PER_HOUR), dtype=np.int64)
    lo = np.maximum(hours * MS_PER_HOUR, t0)
    hi = np.minimum((hours + 1) * MS_PER_HOUR, t1)
    w = _rhythm(hours, hourly) * (hi - lo)
    pick = np.searchsorted(np.cumsum(w) / w.sum(), rng.random(n), side="right")
    pick = np.minimum(pick, len(hours) - 1)
    return np.asarray(lo[pick] + (rng.random(n) * (hi[pick] - lo[pick])).astype(np.int64), dtype=np.int64)


def generate(
    num_transactions: int,
    seed: int,
    start: datetime,
    run_key: str,
    *,
    span: timedelta | None = None,
    config: GeneratorConfig | None = None,
) -> Iterator[TransactionBatch]:
    """Yield exactly ``num_transactions`` transactions in time order, in batches of ``config.chunk_size``.

    ``span`` is the event-time window the run covers (default: ``num_transactions`` at
    ``config.transactions_per_day``). Only ``chunk_size`` rows plus a few pending fraud events are in memory.
    """
    config = config or GeneratorConfig()
    if isinstance(num_transactions, bool) or not isinstance(num_transactions, int) or num_transactions < 1:
        raise ValueError(f"num_transactions must be a positive integer, got {num_transactions!r}")
    if start.tzinfo is None or start.utcoffset() != timedelta(0):
        raise ValueError(f"start must be a UTC-aware datetime, got {start!r}")
    if not run_key:
        raise ValueError("run_key must be a non-empty string")
    span = span or timedelta(days=num_transactions / config.transactions_per_day)
    if span <= timedelta(0):
        raise ValueError(f"span must be positive, got {span}")
    world = build_world(seed, config)
    start_ms = _ms(start)
    state = _RunState(world, config, start_ms, start_ms + max(1, int(span.total_seconds() * 1000)), run_key)
    prefix = run_prefix(run_key)
    chunk = config.chunk_size
    bounds = state.time_at(np.arange(0, num_transactions, chunk, dtype=np.float64) / num_transactions)
    bounds = np.append(bounds, state.end_ms)
    for i, first in enumerate(range(0, num_transactions, chunk)):
        n = min(chunk, num_transactions - first)
        rng = np.random.default_rng([seed, state.run_hash, i])
        rows = _chunk(state, rng, n, int(bounds[i]), int(bounds[i + 1]))
        yield _to_batch(world, rows, prefix, first)


def _chunk(state: _RunState, rng: np.random.Generator, n: int, t0: int, t1: int) -> _Rows:
    """Exactly ``n`` rows with event times in [t0, t1): due fraud events plus legit traffic."""
    cfg = state.config
    episodes = [state.pending]
    total_mix = sum(cfg.pattern_mix.values())
    for name in PATTERNS:
        share = cfg.pattern_mix.get(name, 0.0) / total_mix
        expected = n * cfg.fraud_rate * share / _mean_events(name)
        k = int(rng.poisson(expected)) if expected > 0 else 0
        if k:
            starts = _sample_times(rng, k, t0, t1, FRAUD_HOURLY)
            episodes.append(_EPISODES[name](state, rng, starts))
    events = _Rows.concat(episodes)
    due = events.t < t1
    state.pending = events.take(~due & (events.t < state.end_ms))
    due_rows = events.take(np.flatnonzero(due)[:n])
    legit = _legit(state, rng, n - len(due_rows), t0, t1)
    rows = _Rows.concat([legit, due_rows])
    order = np.lexsort((rows.customer, rows.t))
    return rows.take(order)


def _to_batch(world: World, r: _Rows, prefix: str, first_seq: int) -> TransactionBatch:
    n = len(r)
    country = world.m_country[r.merchant]
    currency = np.asarray(vocab.COUNTRY_CURRENCY, dtype=np.int64)[country]
    fx = np.asarray(vocab.UNITS_PER_USD)[currency]
    cents = np.maximum(np.rint(r.amount_usd * fx * 100), 50).astype(np.int64)
    return TransactionBatch(
        run_prefix=prefix,
        seq=np.arange(first_seq, first_seq + n, dtype=np.int64),
        event_time_ms=r.t.astype(np.int64),
        customer=r.customer,
        merchant=r.merchant,
        merchant_category=world.m_category[r.merchant].astype(np.int8),
        merchant_country=country.astype(np.int8),
        amount_cents=cents,
        currency=currency.astype(np.int8),
        payment_method=r.payment_method.astype(np.int8),
        channel=r.channel.astype(np.int8),
        device=r.device,
        device_type=r.device_type.astype(np.int8),
        ip=r.ip,
        ip_country=r.ip_country.astype(np.int8),
        status=r.status.astype(np.int8),
        is_fraud=r.pattern > 0,
        fraud_pattern=r.pattern.astype(np.int8),
    )


# ---- legit behaviour --------------------------------------------------------------------------------------
def _legit(state: _RunState, rng: np.random.Generator, n: int, t0: int, t1: int) -> _Rows:
    """``n`` legit transactions: habitual devices, home or holiday country, spend around the customer's norm."""
    if n <= 0:
        return _empty_rows()
    w, cfg = state.world, state.config
    # Sessions: some purchases are followed by a few more minutes later (same customer, device, merchant).
    extra = np.where(rng.random(n) < cfg.session_rate, rng.integers(1, 5, n), 0)
    base_n = int(np.searchsorted(np.cumsum(1 + extra), n, side="left")) + 1
    extra = extra[:base_n]
    extra[-1] -= int((1 + extra).sum()) - n
    t = _sample_times(rng, base_n, t0, t1, LEGIT_HOURLY)
    c = _customers_at(w, rng, t)
    rows = _habitual(state, rng, t, c)
    if extra.any():
        rep = np.repeat(np.arange(base_n), 1 + extra)
        rows = rows.take(rep)
        first = np.r_[True, rep[1:] != rep[:-1]]
        offset = np.where(first, 0, rng.integers(1, 30 * MS_PER_MINUTE, len(rep)))
        rows.t = np.minimum(rows.t + _cum_within(rep, offset), t1 - 1)
        small = ~first
        rows.amount_usd = np.where(small, rows.amount_usd * rng.uniform(0.2, 1.0, len(rep)), rows.amount_usd)
    return rows


def _cum_within(groups: I64, values: I64) -> I64:
    """Cumulative sum of ``values`` restarting at every new group (groups are contiguous)."""
    total = np.cumsum(values)
    starts = np.r_[0, np.flatnonzero(groups[1:] != groups[:-1]) + 1]
    base = np.repeat(total[starts] - values[starts], np.diff(np.r_[starts, len(groups)]))
    return np.asarray(total - base, dtype=np.int64)


def _customers_at(w: World, rng: np.random.Generator, t: I64) -> I64:
    c = np.searchsorted(w.activity_cdf, rng.random(len(t)), side="right").astype(np.int64)
    c = np.minimum(c, len(w.home) - 1)
    too_early = w.signup_ms[c] > t
    if too_early.any():
        c[too_early] = w.established[rng.integers(0, len(w.established), int(too_early.sum()))]
    return c


def _habitual(state: _RunState, rng: np.random.Generator, t: I64, c: I64) -> _Rows:
    """Legit purchases of customers ``c`` at times ``t`` following their stateless habits."""
    w, cfg = state.world, state.config
    n = len(t)
    key = w.key
    home = w.home[c]
    week = (t - (w.device_phase[c, 0] * MS_PER_DAY).astype(np.int64)) // MS_PER_WEEK
    travelling = hash_unit(hash_mix(key, _SALT["travel"], c, week)) < w.travel_rate[c]
    dest_h = hash_mix(key, _SALT["dest"], c, week)
    n_home = len(vocab.HOME_COUNTRIES)
    n_all = len(vocab.COUNTRIES)
    # Holidays: mostly other home countries, sometimes further away.
    far = (dest_h % np.uint64(10)) < np.uint64(2)
    near_dest = (home + 1 + (dest_h >> np.uint64(8)) % np.uint64(n_home - 1)).astype(np.int64) % n_home
    far_dest = n_home + ((dest_h >> np.uint64(16)) % np.uint64(n_all - n_home)).astype(np.int64)
    ip_country = np.where(travelling, np.where(far, far_dest, near_dest), home)

    slot = (rng.random(n)[:, None] > w.slot_cdf[c]).sum(axis=1).clip(0, 2).astype(np.int64)
    device = habitual_device(w, c, slot, t)
    one_off = rng.random(n) < cfg.new_device_noise
    device = np.where(one_off, _random_u64(rng, n), device)
    device_type = np.where(one_off, rng.integers(0, 3, n), slot)
    channel = _channel_for(rng, device_type)

    ip_epoch = (t // (60 * MS_PER_DAY)).astype(np.int64)
    home_ip = _ip_in(ip_country, hash_mix(key, _SALT["ip"], c, ip_epoch))
    random_ip = _ip_in(ip_country, _random_u64(rng, n))
    ip = np.where((device_type == _MOBILE) | travelling | one_off, random_ip, home_ip)

    shop_country = np.where(travelling & (ip_country < n_home) & (rng.random(n) < 0.7), ip_country, home)
    cross_border = rng.random(n) < 0.12
    shop_country = np.where(cross_border, rng.integers(0, n_home, n), shop_country)
    merchant = _pick_merchant(w, rng, shop_country)

    # One uniform draw decides the unusual baskets - a big purchase (three times likelier in the European
    # night, when fraudsters are busiest too), a micro charge at a digital merchant, or neither - and, rescaled
    # within its bucket, also how big or how small.
    odd = rng.random(n)
    p_big = cfg.big_purchase_rate * np.where((t // MS_PER_HOUR) % 24 < 6, 3.0, 1.0)
    big = odd < p_big
    micro_u = (odd - p_big) / max(cfg.micro_purchase_rate, 1e-12)
    micro = (micro_u >= 0) & (micro_u < 1)
    if micro.any():
        merchant[micro] = _from_pool(rng, w.digital_ids, w.digital_cdf, int(micro.sum()))
    cat_amount = np.asarray(vocab.CATEGORY_AMOUNT)[w.m_category[merchant]]
    amount = np.exp(w.spend_mu[c] + w.spend_sigma[c] * rng.standard_normal(n)) * cat_amount
    amount = np.where(big, amount * (3 + 9 * odd / np.maximum(p_big, 1e-12)), amount)
    amount = np.where(micro, 0.5 + 4.5 * micro_u, amount)

    payment = np.where(rng.random(n) < 0.8, w.preferred_payment[c], _weighted(rng, vocab.PAYMENT_WEIGHTS, n))
    status = _status(rng, n, declined=np.where(big, 0.08, 0.025), pending=0.015)
    zero = np.zeros(n, dtype=np.int64)
    return _Rows(t, c, merchant, amount, payment, channel, device, device_type, ip, ip_country, status, zero)


def habitual_device(w: World, c: I64, slot: I64, t: I64) -> U64:
    """The device customer ``c`` uses in ``slot`` at time ``t``; it is replaced every slot period."""
    period = np.asarray(_DEVICE_PERIOD_DAYS)[slot]
    epoch = ((t / MS_PER_DAY + w.device_phase[c, slot]) // period).astype(np.int64)
    return hash_mix(w.key, _SALT["device"], c, slot, epoch)


def _channel_for(rng: np.random.Generator, device_type: I64) -> I64:
    u = rng.random(len(device_type))
    mobile = np.where(u < 0.85, 1, 0)  # mobile_app, else web
    desktop = np.where(u < 0.75, 0, 2)  # web, else marketplace
    tablet = np.where(u < 0.5, 1, 0)
    return np.select([device_type == _MOBILE, device_type == _DESKTOP], [mobile, desktop], tablet).astype(np.int64)


def _ip_in(country: I64, h: U64) -> I64:
    """An IPv4 address (as an integer) whose first octet geolocates to ``country``."""
    first = 11 + 9 * country + (h % np.uint64(9)).astype(np.int64)
    rest = ((h >> np.uint64(8)) & np.uint64(0xFFFFFF)).astype(np.int64)
    return np.asarray((first << 24) | rest, dtype=np.int64)


def _pick_merchant(w: World, rng: np.random.Generator, country: I64) -> I64:
    # CDFs of all countries are laid end to end, offset by the country number: one searchsorted serves all.
    pos = np.searchsorted(w.m_country_cdf, country + rng.random(len(country)) * (1 - 1e-9), side="right")
    return w.m_country_order[np.minimum(pos, len(w.m_country_order) - 1)]


def _from_pool(rng: np.random.Generator, ids: I64, cdf: F64, n: int) -> I64:
    return ids[np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(ids) - 1)]


def _weighted(rng: np.random.Generator, weights: tuple[float, ...], n: int) -> I64:
    cdf = np.cumsum(weights) / sum(weights)
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(weights) - 1).astype(np.int64)


def _status(rng: np.random.Generator, n: int, declined: Any, pending: Any) -> I64:
    u = rng.random(n)
    return np.where(u < declined, 1, np.where(u < np.asarray(declined) + pending, 2, 0)).astype(np.int64)


# ---- fraud episodes ---------------------------------------------------------------------------------------
# Events per episode of each pattern, drawn from [lo, hi). The fraud-row budget of a chunk is turned into an
# episode count with the mean of this range, so the two can never drift apart.
_EVENTS: Final = {
    "card_testing": (3, 13),
    "account_takeover": (1, 4),
    "stolen_card": (2, 10),
    "merchant_compromise": (1, 2),
    "geo_velocity": (1, 3),
}


def _mean_events(pattern: str) -> float:
    lo, hi = _EVENTS[pattern]
    return (lo + hi - 1) / 2


def _explode(rng: np.random.Generator, starts: I64, counts: I64, gap_ms: tuple[int, int]) -> tuple[I64, I64]:
    """Episode index and event time of every event: ``counts[e]`` events after ``starts[e]``, random gaps."""
    ep = np.repeat(np.arange(len(starts)), counts)
    first = np.r_[True, ep[1:] != ep[:-1]] if len(ep) else np.zeros(0, bool)
    gaps = np.where(first, 0, rng.integers(gap_ms[0], gap_ms[1], len(ep)))
    return ep, starts[ep] + _cum_within(ep, gaps)


def _random_u64(rng: np.random.Generator, n: int) -> U64:
    """``n`` random 63-bit values: fresh device ids and IP host parts nobody has used before."""
    return rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)


@dataclass(frozen=True)
class _Episodes:
    """The episodes of one pattern in one chunk, exploded into events - the steps every pattern shares.

    Each pattern differs only in its choices (how many events, which merchants, what amounts, where from);
    who the victim is, how an episode spreads over events, which episodes are *disguised* and which are never
    reported are decided here once, so the patterns cannot drift apart in how they treat them.

    Disguised episodes are what keeps fraud from being trivially separable: the fraudster works from the
    victim's own habitual device and home country (malware, a family member, a stolen unlocked phone), at
    an amount the victim could plausibly spend. Only velocity, merchant risk and timing can still hint at them.
    """

    state: _RunState
    rng: np.random.Generator
    pattern: str
    victims: I64  # per episode
    ep: I64  # per event: its episode
    t: I64  # per event: its time
    disguised: Bool  # per episode

    @classmethod
    def start(
        cls, state: _RunState, rng: np.random.Generator, starts: I64, pattern: str, gap_ms: tuple[int, int]
    ) -> _Episodes:
        """Pick the victims of episodes starting at ``starts`` and spread each over its events."""
        k = len(starts)
        victims = _customers_at(state.world, rng, starts)
        lo, hi = _EVENTS[pattern]
        ep, t = _explode(rng, starts, rng.integers(lo, hi, k), gap_ms)
        disguised = rng.random(k) < state.config.disguised_fraud_share
        return cls(state, rng, pattern, victims, ep, t, disguised)

    @property
    def customer(self) -> I64:
        return self.victims[self.ep]

    def __len__(self) -> int:
        return len(self.ep)

    def ip_country(self, home_share: float, source_share: float) -> I64:
        """Per event: the victim's home country for disguised episodes and a ``home_share`` of the others
        (a local fraudster or a proxy in the victim's country); otherwise foreign, from a known fraud-source
        country with probability ``source_share``."""
        w, rng, k = self.state.world, self.rng, len(self.victims)
        home = w.home[self.victims]
        n_home, n_all = len(vocab.HOME_COUNTRIES), len(vocab.COUNTRIES)
        other_home = (home + rng.integers(1, n_home, k)) % n_home
        source = rng.integers(n_home, n_all - 2, k)  # NG..ID
        foreign = np.where(rng.random(k) < source_share, source, other_home)
        at_home = self.disguised | (rng.random(k) < home_share)
        return np.where(at_home, home, foreign).astype(np.int64)[self.ep]

    def devices(self, attacker_type: I64 | int) -> tuple[U64, I64]:
        """Per event: one fresh attacker device per episode (type ``attacker_type``, per episode or fixed),
        or the victim's own habitual phone/computer in disguised episodes."""
        k = len(self.victims)
        own_slot = self.rng.integers(_MOBILE, _DESKTOP + 1, k)
        own = habitual_device(self.state.world, self.victims, own_slot, self.t[_first_events(self.ep, k)])
        fresh = _random_u64(self.rng, k)
        device = np.where(self.disguised, own, fresh)[self.ep]
        kind = np.where(self.disguised, own_slot, np.broadcast_to(np.asarray(attacker_type), (k,)))
        return device, kind.astype(np.int64)[self.ep]

    def merchants(self, ids: I64, cdf: F64) -> I64:
        """Per event: a merchant of the pattern's pool (``ids`` weighted by ``cdf``), or for disguised
        episodes a merchant of the victim's home country, like their everyday purchases."""
        n = len(self.ep)
        pooled = _from_pool(self.rng, ids, cdf, n)
        local = _pick_merchant(self.state.world, self.rng, self.state.world.home[self.customer])
        return np.where(self.disguised[self.ep], local, pooled)

    def basket(self, lo: float, hi: float) -> F64:
        """Per event: a multiple in [lo, hi) of the victim's typical basket - at most 0.6-2x when disguised."""
        n = len(self.ep)
        mu = self.state.world.spend_mu[self.customer]
        disguised = self.disguised[self.ep]
        low = np.where(disguised, 0.6, lo)
        high = np.where(disguised, min(hi, 2.0), hi)
        return np.asarray(np.exp(mu) * self.rng.uniform(low, high, n), dtype=np.float64)

    def rows(
        self,
        *,
        merchant: I64,
        amount: F64,
        ip_country: I64,
        device: U64,
        device_type: I64,
        declined: float,
        payment: I64 | None = None,
        t: I64 | None = None,
    ) -> _Rows:
        """The events as rows. Unreported episodes keep their behaviour but carry no label (``pattern`` 0):
        the chargeback never came, so the data - like real data - calls them legit."""
        rng, n, k = self.rng, len(self.ep), len(self.victims)
        ip = _ip_in(ip_country, _random_u64(rng, n))
        if payment is None:
            payment = np.where(rng.random(n) < 0.9, 0, _weighted(rng, vocab.PAYMENT_WEIGHTS, n))
        status = _status(rng, n, declined=declined, pending=0.02)
        unreported = rng.random(k) < self.state.config.unreported_fraud_share
        code = np.where(unreported, 0, vocab.code(vocab.FRAUD_PATTERNS, self.pattern)).astype(np.int64)[self.ep]
        channel = _channel_for(rng, device_type)
        when = self.t if t is None else t
        return _Rows(
            when, self.customer, merchant, amount, payment, channel, device, device_type, ip, ip_country, status, code
        )


def _first_events(ep: I64, k: int) -> I64:
    """Index of the first event of each of the ``k`` episodes (every episode has at least one event)."""
    return np.asarray(np.searchsorted(ep, np.arange(k), side="left"), dtype=np.int64)


def _card_testing(state: _RunState, rng: np.random.Generator, starts: I64) -> _Rows:
    """Small charges within minutes, mostly at digital-goods merchants, to see which stolen cards work.

    Most are tiny, but some testers use ordinary small amounts at ordinary local shops - and legit in-app
    purchase sessions produce tiny charges at the same merchants.
    """
    e = _Episodes.start(state, rng, starts, "card_testing", (20_000, 4 * MS_PER_MINUTE))
    w, k, n = state.world, len(starts), len(e)
    digital = _from_pool(rng, w.digital_ids, w.digital_cdf, k)
    anywhere = e.disguised | (rng.random(k) < 0.3)
    local = _pick_merchant(w, rng, w.home[e.customer])
    spread = rng.random(n) < 0.6
    merchant = np.where(
        anywhere[e.ep], local, np.where(spread, digital[e.ep], _from_pool(rng, w.digital_ids, w.digital_cdf, n))
    )
    tiny = rng.random(k) < 0.65
    amount = np.where(tiny[e.ep], rng.uniform(0.5, 4.0, n), rng.uniform(3.0, 25.0, n))
    device, device_type = e.devices(_DESKTOP)
    return e.rows(
        merchant=merchant,
        amount=amount,
        ip_country=e.ip_country(0.5, 0.7),
        device=device,
        device_type=device_type,
        declined=0.4,
    )


def _account_takeover(state: _RunState, rng: np.random.Generator, starts: I64) -> _Rows:
    """A new device takes over the account and buys resellable goods with the stored payment method."""
    e = _Episodes.start(state, rng, starts, "account_takeover", (5 * MS_PER_MINUTE, 90 * MS_PER_MINUTE))
    w = state.world
    merchant = e.merchants(w.goods_ids, w.goods_cdf)
    device, device_type = e.devices(rng.integers(_MOBILE, _DESKTOP + 1, len(starts)))
    return e.rows(
        merchant=merchant,
        amount=e.basket(2.0, 10.0),
        ip_country=e.ip_country(0.45, 0.6),
        device=device,
        device_type=device_type,
        declined=0.1,
        payment=w.preferred_payment[e.customer],
    )


def _stolen_card(state: _RunState, rng: np.random.Generator, starts: I64) -> _Rows:
    """A spending spree over a few hours, mostly domestic, above the cardholder's usual basket."""
    e = _Episodes.start(state, rng, starts, "stolen_card", (5 * MS_PER_MINUTE, 50 * MS_PER_MINUTE))
    w = state.world
    merchant = e.merchants(w.goods_ids, w.goods_cdf)
    device, device_type = e.devices(rng.integers(_MOBILE, _DESKTOP + 1, len(starts)))
    return e.rows(
        merchant=merchant,
        amount=e.basket(1.2, 6.0),
        ip_country=e.ip_country(0.7, 0.5),
        device=device,
        device_type=device_type,
        declined=0.15,
    )


def compromised_merchants(world: World, window: int) -> I64:
    """Merchants compromised during compromise window number ``window`` (riskier merchants more often).

    Windows are ``GeneratorConfig.compromise_window_days`` long, counted from the Unix epoch.
    """
    m = np.arange(len(world.m_risk))
    u = hash_unit(hash_mix(world.key, _SALT["compromise"], m, window))
    return m[u < 0.002 + 0.1 * world.m_risk**2]


def _merchant_compromise(state: _RunState, rng: np.random.Generator, starts: I64) -> _Rows:
    """Card data harvested at a compromised merchant is charged there again, during its compromise window.

    Nothing about the customer gives it away as often as in the other patterns: the merchant's recent
    (label-delayed) fraud rate is the main signal.
    """
    e = _Episodes.start(state, rng, starts, "merchant_compromise", (1, 2))  # one event: no gaps
    w = state.world
    window_ms = int(state.config.compromise_window_days * MS_PER_DAY)
    windows = e.t // window_ms
    merchant = np.empty(len(e), dtype=np.int64)
    for win in np.unique(windows):
        pool = compromised_merchants(w, int(win))
        at = windows == win
        merchant[at] = pool[rng.integers(0, len(pool), int(at.sum()))] if len(pool) else 0
    device, device_type = e.devices(_DESKTOP)
    return e.rows(
        merchant=merchant,
        amount=e.basket(1.0, 5.0),
        ip_country=np.where(e.disguised[e.ep], w.home[e.customer], w.m_country[merchant]),
        device=device,
        device_type=device_type,
        declined=0.1,
    )


def _geo_velocity(state: _RunState, rng: np.random.Generator, starts: I64) -> _Rows:
    """The cardholder pays at home, then minutes later 'they' pay from another continent."""
    e = _Episodes.start(state, rng, starts, "geo_velocity", (10 * MS_PER_MINUTE, 40 * MS_PER_MINUTE))
    w, k, n = state.world, len(starts), len(e)
    anchor = _habitual(state, rng, starts, e.victims)
    home = w.home[e.victims]
    anchor.ip_country = home
    anchor.ip = _ip_in(home, _random_u64(rng, k))
    anchor.merchant = _pick_merchant(w, rng, home)
    far = len(vocab.HOME_COUNTRIES) + rng.integers(0, len(vocab.OTHER_COUNTRIES), k)
    cloned = rng.random(k) < 0.5  # the attacker spoofs the device fingerprint seen at the anchor purchase
    fresh, fresh_type = e.devices(_DESKTOP)
    fraud = e.rows(
        t=e.t + rng.integers(5 * MS_PER_MINUTE, 60 * MS_PER_MINUTE, n),
        merchant=e.merchants(w.goods_ids, w.goods_cdf),
        amount=e.basket(1.2, 5.0),
        ip_country=far[e.ep],
        device=np.where(cloned[e.ep], anchor.device[e.ep], fresh),
        device_type=np.where(cloned[e.ep], anchor.device_type[e.ep], fresh_type),
        declined=0.1,
    )
    return _Rows.concat([anchor, fraud])


_EPISODES: Final = {
    "card_testing": _card_testing,
    "account_takeover": _account_takeover,
    "stolen_card": _stolen_card,
    "merchant_compromise": _merchant_compromise,
    "geo_velocity": _geo_velocity,
}
