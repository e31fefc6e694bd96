"""Point-in-time fraud features: one vectorised function shared by training, evaluation and scoring.

Why it is built this way:

* **Only the strict past.** Every behavioural feature of a transaction at time ``t`` is computed from events
  with ``event_time < t`` (strictly: a simultaneous event of the same customer is not "before"). The trick
  that keeps this vectorised is a *timeline*: events sorted by ``(group, time)`` and packed into one int64
  key ``group * span + time``; a ``searchsorted`` of ``(group, t - window)`` gives, for every row at once,
  where its window starts, and prefix sums turn windows into counts and sums. No Python loop per row.
* **Labels only through a delay.** ``is_fraud`` enters exactly one family of features - merchant and
  category fraud rates - and only from events older than ``label_delay`` before ``t`` (chargebacks arrive
  late; a model that peeks at fresh labels looks great offline and fails in production). Missing labels
  (``None``) are "not known yet" and count for nothing. ``fraud_pattern`` is never read.
* **Same code everywhere.** :func:`build_features` takes the history plus the rows to score in one frame
  and returns features aligned to its rows; training, the out-of-time evaluation and batch scoring all call
  it, so there is no train/serve skew to test for.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from shoplake.contracts.reference import CURRENCY_EXPONENTS, UNITS_PER_USD

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

MS_PER_SECOND: Final = 1_000
MS_PER_MINUTE: Final = 60 * MS_PER_SECOND
MS_PER_HOUR: Final = 60 * MS_PER_MINUTE
MS_PER_DAY: Final = 24 * MS_PER_HOUR

# Columns build_features reads (the silver names). ``is_fraud`` may hold nulls: "label not known yet".
INPUT_COLUMNS: Final = (
    "event_time",
    "customer_id",
    "merchant_id",
    "merchant_category",
    "merchant_country",
    "amount_cents",
    "currency",
    "payment_method",
    "channel",
    "device_id",
    "device_type",
    "ip_country",
    "status",
    "is_fraud",
)
CATEGORICAL_FEATURES: Final = ("channel", "payment_method", "device_type", "merchant_category", "ip_country")
VELOCITY_WINDOWS: Final = {"10m": 10 * MS_PER_MINUTE, "1h": MS_PER_HOUR, "24h": MS_PER_DAY, "7d": 7 * MS_PER_DAY}
NUMERIC_FEATURES: Final = (
    "amount_usd_log",
    *(f"cust_count_{w}" for w in VELOCITY_WINDOWS),
    *(f"cust_amount_{w}" for w in VELOCITY_WINDOWS),
    "cust_count_history",
    "cust_declined_1h",
    "seconds_since_prev",
    "ip_country_changed",
    "amount_log_ratio_mean",
    "amount_zscore",
    "device_count_history",
    "device_count_1h",
    "device_age_hours",
    "country_count_history",
    "country_share_history",
    "ip_merchant_country_mismatch",
    "merchant_risk",
    "merchant_risk_recent",
    "merchant_labelled",
    "category_risk",
    "hour_of_day",
    "day_of_week",
)
FEATURE_COLUMNS: Final = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)

# Stand-in for "no previous event" in gap features: longer than any window, so trees split it off cleanly.
NO_PREVIOUS_SECONDS: Final = 90.0 * 24 * 3600


@dataclass(frozen=True)
class FeatureConfig:
    """Horizons of the features; logged as run params so a model's features can be rebuilt exactly.

    Every feature looks back a bounded time, so it is fully defined once :meth:`required_history` of
    events before a row are loaded - the reason training and scoring produce identical values for the
    same event no matter how large the window around it is.
    """

    history: timedelta = timedelta(days=14)  # customer behaviour: amounts, devices, countries
    label_delay: timedelta = timedelta(days=3)  # labels younger than this are unknown
    risk_window: timedelta = timedelta(days=14)  # labelled history behind merchant/category risk
    recent_risk_window: timedelta = timedelta(days=4)  # short window catching merchant compromises
    risk_smoothing: float = 50.0  # pseudo-observations pulling a merchant's rate to the global rate

    def __post_init__(self) -> None:
        if self.label_delay < timedelta(0) or self.risk_smoothing <= 0:
            raise ValueError("label_delay must be >= 0 and risk_smoothing > 0")
        if min(self.history, self.risk_window, self.recent_risk_window) <= timedelta(0):
            raise ValueError("history, risk_window and recent_risk_window must be positive")
        if self.history < timedelta(days=7):
            raise ValueError("history must cover the longest velocity window (7 days)")

    def required_history(self) -> timedelta:
        """How much event time before a row must be loaded for its features to be complete."""
        return max(self.history, self.label_delay + self.risk_window)

    def as_params(self) -> dict[str, str]:
        return {
            f"feature_{name}_hours": f"{getattr(self, name).total_seconds() / 3600:g}"
            for name in ("history", "label_delay", "risk_window", "recent_risk_window")
        } | {"feature_risk_smoothing": f"{self.risk_smoothing:g}"}


class _Timeline:
    """Events sorted by (group, time), answering "how many / how much in [t - w, t)" for the target rows.

    One int64 key ``group * span + (time - t0)`` orders the events; a window start is a ``searchsorted``
    of ``key - w`` (clipped to the group). Queries run in timeline order, where the needles are already
    sorted, so ``searchsorted`` walks the keys once (far cheaper than querying in row order), and only the
    target rows are queried: scoring a day with two weeks of history costs the sort, not two weeks of queries.
    Results come back in :attr:`rows` order (the target rows as this timeline visits them).
    """

    def __init__(self, group: I64, t: I64, target: npt.NDArray[np.bool_]) -> None:
        t0 = int(t.min()) if len(t) else 0
        self.span = (int(t.max()) - t0 + 2) if len(t) else 2
        n_groups = int(group.max()) + 1 if len(group) else 1
        if n_groups * self.span >= 2**62:
            raise ValueError("time range x number of groups too large for the int64 timeline key")
        key = group * self.span + (t - t0)
        # Ties (same group, same millisecond) are "not before" each other whatever their order here.
        order = group_time_order(group, t)
        self.order = np.argsort(key, kind="stable") if order is None else order
        self.keys = key[self.order]
        self.sel = np.flatnonzero(target[self.order])  # timeline positions of the target rows
        self.rows = self.order[self.sel]  # their row numbers
        self._needle = self.keys[self.sel]
        self._floor = (group[self.rows]) * self.span
        self._before: dict[int, I64] = {}
        self.positions: I64 | None = None  # where _Columns puts this timeline's values (set on first put)

    def before(self, offset_ms: int) -> I64:
        """Per target row: timeline index of the first event of its group at or after ``t - offset_ms``.

        ``before(0)`` is the end of the row's strictly-before range, ``before(w)`` the start of ``[t - w, t)``.
        Answers are kept: the features ask for the same few offsets several times.
        """
        found = self._before.get(offset_ms)
        if found is None:
            if offset_ms == 0:
                found = self._run_starts()[self.sel]  # the row's own key: where its run of equal keys starts
            else:
                needles = np.maximum(self._needle - offset_ms, self._floor)
                found = np.asarray(np.searchsorted(self.keys, needles, side="left"), dtype=np.int64)
            self._before[offset_ms] = found
        return found

    def _run_starts(self) -> I64:
        """Per timeline position: the first position holding the same key (== searchsorted(key, "left"))."""
        k = self.keys
        starts = np.arange(len(k), dtype=np.int64)
        if len(k) > 1:
            starts[1:][k[1:] == k[:-1]] = 0
        return np.asarray(np.maximum.accumulate(starts), dtype=np.int64)

    def prefix(self, values: npt.ArrayLike) -> F64:
        """Prefix sums of ``values`` (given in row order) in timeline order, with a leading 0."""
        v = np.asarray(values, dtype=np.float64)[self.order]
        out = np.empty(len(v) + 1, dtype=np.float64)
        out[0] = 0.0
        np.cumsum(v, out=out[1:])
        return out

    def values_at(self, values: I64, index: I64) -> I64:
        """``values`` (row order) of the events at timeline positions ``index`` (clipped into range)."""
        return np.asarray(values[self.order[np.clip(index, 0, len(self.order) - 1)]], dtype=np.int64)


def group_time_order(group: I64, t: I64) -> I64 | None:
    """``argsort(group * span + (t - t0), kind="stable")`` without sorting int64 keys, when the input allows.

    Frames from :func:`shoplake.ml.extract.to_frame` arrive sorted by time. Then a stable sort by the group
    code alone is the same permutation (rows of a group keep row order, which is time order, ties included),
    and NumPy's stable sort of 16-bit values is a radix sort: one or two linear passes over 16-bit halves
    instead of an n log n sort of int64 keys - on a large frame the difference is most of the sorting time.
    ``None`` when the shortcut does not apply (unsorted times, negative codes, codes of 32 bits or more).
    """
    if len(t) < 2:
        return np.arange(len(t), dtype=np.int64)
    low, high = int(group.min()), int(group.max())
    if low < 0 or high >= 2**32 or not bool(np.all(t[1:] >= t[:-1])):
        return None
    order = np.argsort((group & 0xFFFF).astype(np.uint16), kind="stable")
    if high >= 2**16:
        order = order[np.argsort((group[order] >> 16).astype(np.uint16), kind="stable")]
    return np.asarray(order, dtype=np.int64)


class _Columns:
    """Numeric feature columns of the target rows, filled timeline by timeline (each in its own row order).

    The columns are the rows of one C-ordered matrix, so the result frame wraps it as a single block instead
    of pandas copying 26 separate columns together (a second full pass over the features).
    """

    def __init__(self, target_rows: I64, n: int) -> None:
        self.rank = np.full(n, -1, dtype=np.int64)
        self.rank[target_rows] = np.arange(len(target_rows))
        self.matrix = np.empty((len(NUMERIC_FEATURES), len(target_rows)), dtype=np.float64)
        self._index = {name: i for i, name in enumerate(NUMERIC_FEATURES)}
        self._filled: set[str] = set()

    def put(self, tl: _Timeline, name: str, values: npt.ArrayLike) -> None:
        """``values`` in ``tl``'s target order."""
        if tl.positions is None:
            tl.positions = self.rank[tl.rows]
        self.matrix[self._index[name], tl.positions] = values
        self._filled.add(name)

    def set(self, name: str, values: npt.ArrayLike) -> None:
        """``values`` in target row order."""
        self.matrix[self._index[name]] = values
        self._filled.add(name)

    def frame(self, index: pd.Index) -> pd.DataFrame:
        missing = set(NUMERIC_FEATURES) - self._filled
        if missing:
            raise AssertionError(f"feature column(s) {sorted(missing)} were never computed")
        return pd.DataFrame(self.matrix.T, index=index, columns=list(NUMERIC_FEATURES), copy=False)


def _codes(values: pd.Series) -> I64:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return np.asarray(values.cat.codes, dtype=np.int64)
    codes, _ = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


def _pair_codes(a: I64, b: I64) -> I64:
    combined = a * (int(b.max()) + 1 if len(b) else 1) + b
    codes, _ = pd.factorize(combined)
    return np.asarray(codes, dtype=np.int64)


def _event_ms(event_time: pd.Series) -> I64:
    if not isinstance(event_time.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"event_time must be a timezone-aware (UTC) timestamp column, got {event_time.dtype}")
    return np.asarray(event_time.dt.tz_convert("UTC").astype("datetime64[ms, UTC]").astype("int64"), dtype=np.int64)


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def _text(values: pd.Series, rows: I64 | None = None) -> npt.NDArray[np.object_]:
    """``values.iloc[rows].astype(str)`` as an object array (``rows=None``: all rows).

    A categorical column is converted once per category and gathered by code, not once per row - the same
    strings (a missing value is ``"nan"``, as pandas renders it) at a fraction of the cost on million-row frames.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        names = np.append(values.cat.categories.astype(str).to_numpy(dtype=object), "nan")
        codes = values.cat.codes.to_numpy()
        return np.asarray(names[codes if rows is None else codes[rows]], dtype=object)
    picked = values if rows is None else values.iloc[rows]
    return np.asarray(picked.astype(str).to_numpy(dtype=object), dtype=object)


def _as_categorical(values: pd.Series, rows: I64) -> pd.Categorical:
    """``_text(values, rows)`` as a ``Categorical`` (same strings), built from codes when the input has them."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        names = np.append(values.cat.categories.astype(str).to_numpy(dtype=object), "nan")
        to_unique, unique = pd.factorize(names)  # "nan" may already be a category: categories must be unique
        return pd.Categorical.from_codes(to_unique[values.cat.codes.to_numpy()[rows]], categories=unique)
    return pd.Categorical(_text(values, rows))


def _lookup(values: pd.Series, table: dict[str, float], default: float) -> F64:
    """``table[str(value)]`` per row (``default`` when absent), looked up once per distinct value."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        distinct = [*values.cat.categories.astype(str), "nan"]  # code -1 (missing) picks the last entry
        codes = values.cat.codes.to_numpy()
    else:
        codes, uniques = pd.factorize(values.astype(str))
        distinct = list(uniques)
    per_value = np.array([table.get(str(v), default) for v in distinct], dtype=np.float64)
    return np.asarray(per_value[codes], dtype=np.float64)


def amount_usd(amount_cents: pd.Series, currency: pd.Series) -> F64:
    """Amounts in (approximate) US dollars from minor units, honouring each currency's ISO 4217 exponent."""
    exponent = _lookup(currency, {k: float(v) for k, v in CURRENCY_EXPONENTS.items()}, 2.0)
    rate = _lookup(currency, UNITS_PER_USD, 1.0)  # an unknown currency counts at par: it only blurs amounts
    return np.asarray(amount_cents.to_numpy(dtype=np.float64) / 10.0**exponent / rate, dtype=np.float64)


def validate_input(tx: pd.DataFrame) -> None:
    """Raise ``ValueError`` naming every missing column before any work is done."""
    missing = [c for c in INPUT_COLUMNS if c not in tx.columns]
    if missing:
        raise ValueError(f"transactions frame lacks column(s) {missing}; expected the silver columns {INPUT_COLUMNS}")


def build_features(
    tx: pd.DataFrame,
    config: FeatureConfig | None = None,
    target: npt.ArrayLike | None = None,
    labels: LabelRates | None = None,
    *,
    categorical: bool = False,
) -> pd.DataFrame:
    """Features of the ``target`` rows of ``tx`` (default: all), computed from all of ``tx`` as history.

    Returns a frame indexed like ``tx[target]``. A row's features depend only on events strictly before its
    ``event_time`` within :meth:`FeatureConfig.required_history`, and on labels only of events older than
    ``config.label_delay``; appending future events or later labels never changes them.

    ``labels`` (default: built from ``tx``) is where the merchant/category risk features count labels; pass a
    :class:`LabelRates` holding every labelled event of the risk windows when ``tx`` holds only the scored
    customers' own history (the streaming scorer does).

    ``categorical=True`` returns the categorical features as pandas ``Categorical`` columns holding the same
    strings instead of object columns: the same values, but the model's encoder then maps a few categories
    instead of hashing a million strings (what scoring wants; training keeps plain strings for MLflow's
    signature).
    """
    config = config or FeatureConfig()
    validate_input(tx)
    n = len(tx)
    is_target = np.ones(n, dtype=bool) if target is None else np.asarray(target, dtype=bool)
    if is_target.shape != (n,):
        raise ValueError(f"target must be a boolean mask of length {n}")
    rows = np.flatnonzero(is_target)
    cols = _Columns(rows, n)
    t = _event_ms(tx["event_time"])
    usd = amount_usd(tx["amount_cents"], tx["currency"])
    cust = _codes(tx["customer_id"])
    ip_country = _codes(tx["ip_country"])
    history = _ms(config.history)
    t_own = t[rows]
    # Risk features share nothing with the customer timelines: they run on a second thread (NumPy's sorts and
    # searches release the GIL), on their own copy of the four columns they read. Same values either way.
    risk_input = tx[list(_RISK_INPUT)]
    with ThreadPoolExecutor(1) as pool:
        risk = pool.submit(_risk_features, risk_input, labels, rows, t_own, config)
        cust_count = _customer_features(
            cols, tx, t=t, usd=usd, cust=cust, ip_country=ip_country, is_target=is_target, history=history
        )
        _novelty_features(
            cols, tx, t=t, cust=cust, ip_country=ip_country, cust_count=cust_count, is_target=is_target, history=history
        )
        for name, values in risk.result().items():
            cols.set(name, values)
    cols.set("amount_usd_log", np.log1p(usd[rows]))
    cols.set(
        "ip_merchant_country_mismatch",
        tx["ip_country"].iloc[rows].to_numpy(dtype=object) != tx["merchant_country"].iloc[rows].to_numpy(dtype=object),
    )
    cols.set("hour_of_day", (t_own // MS_PER_HOUR) % 24)
    cols.set("day_of_week", (t_own // MS_PER_DAY + 3) % 7)  # 1970-01-01: Thursday
    frame = cols.frame(tx.index[rows])
    for c in CATEGORICAL_FEATURES:
        frame[c] = _as_categorical(tx[c], rows) if categorical else _text(tx[c], rows)
    return frame


_RISK_INPUT: Final = ("event_time", "merchant_id", "merchant_category", "is_fraud")


def _risk_features(
    tx: pd.DataFrame, labels: LabelRates | None, rows: I64, t_own: I64, config: FeatureConfig
) -> dict[str, F64]:
    """The label-rate features of ``rows``, from ``labels`` or (default) the labelled events of ``tx``."""
    return (LabelRates.from_frame(tx) if labels is None else labels).features(tx, rows, t_own, config)


def _customer_features(
    cols: _Columns,
    tx: pd.DataFrame,
    *,
    t: I64,
    usd: F64,
    cust: I64,
    ip_country: I64,
    is_target: npt.NDArray[np.bool_],
    history: int,
) -> F64:
    """Velocity, gap, country hop and amount-versus-history of the customer; returns the history count (row order)."""
    tl = _Timeline(cust, t, is_target)
    end = tl.before(0)
    first = tl.before(history)
    count = end - first
    amount_cs = tl.prefix(usd)
    for name, window in VELOCITY_WINDOWS.items():
        begin = tl.before(window)
        cols.put(tl, f"cust_count_{name}", end - begin)
        cols.put(tl, f"cust_amount_{name}", amount_cs[end] - amount_cs[begin])
    cols.put(tl, "cust_count_history", count)
    declined_cs = tl.prefix(tx["status"].to_numpy() == "declined")
    cols.put(tl, "cust_declined_1h", declined_cs[end] - declined_cs[tl.before(MS_PER_HOUR)])

    has_prev = count > 0
    gap = (t[tl.rows] - tl.values_at(t, end - 1)) / MS_PER_SECOND
    cols.put(tl, "seconds_since_prev", np.where(has_prev, gap, NO_PREVIOUS_SECONDS))
    cols.put(tl, "ip_country_changed", has_prev & (tl.values_at(ip_country, end - 1) != ip_country[tl.rows]))

    log_usd = np.log1p(usd)
    own_log = log_usd[tl.rows]
    log_cs, sq_cs = tl.prefix(log_usd), tl.prefix(log_usd**2)
    safe_count = np.maximum(count, 1)
    mean_log = (log_cs[end] - log_cs[first]) / safe_count
    std_log = np.sqrt(np.maximum((sq_cs[end] - sq_cs[first]) / safe_count - mean_log**2, 0.0))
    cols.put(tl, "amount_log_ratio_mean", np.where(has_prev, own_log - mean_log, 0.0))
    cols.put(tl, "amount_zscore", np.where(count >= 2, (own_log - mean_log) / np.maximum(std_log, 0.1), 0.0))
    by_row = np.zeros(len(t))
    by_row[tl.rows] = count
    return by_row


def _novelty_features(
    cols: _Columns,
    tx: pd.DataFrame,
    *,
    t: I64,
    cust: I64,
    ip_country: I64,
    cust_count: F64,
    is_target: npt.NDArray[np.bool_],
    history: int,
) -> None:
    """Has this customer used this device / this IP country within the history horizon, and how much?"""
    dtl = _Timeline(_pair_codes(cust, _codes(tx["device_id"])), t, is_target)
    d_end, d_first = dtl.before(0), dtl.before(history)
    cols.put(dtl, "device_count_history", d_end - d_first)
    cols.put(dtl, "device_count_1h", d_end - dtl.before(MS_PER_HOUR))
    seen_for = (t[dtl.rows] - dtl.values_at(t, d_first)) / MS_PER_HOUR
    cols.put(dtl, "device_age_hours", np.where(d_end > d_first, seen_for, -1.0))

    ctl = _Timeline(_pair_codes(cust, ip_country), t, is_target)
    c_count = ctl.before(0) - ctl.before(history)
    cols.put(ctl, "country_count_history", c_count)
    total = cust_count[ctl.rows]
    cols.put(ctl, "country_share_history", np.where(total > 0, c_count / np.maximum(total, 1), -1.0))


class _LabelCounts:
    """Labelled events sorted by (group, time) with running fraud counts: windowed counts per query row.

    ``names`` are the group values (merchant ids, categories) in code order, so rows of any other frame can be
    looked up by value. Counts are integers, so any split of the same events into states and queries gives
    bit-identical rates.
    """

    def __init__(self, codes: I64, names: pd.Index, t: I64, fraud: npt.NDArray[np.bool_]) -> None:
        self.names = names
        self.t0 = int(t.min()) if len(t) else 0
        self.span = (int(t.max()) - self.t0 + 2) if len(t) else 2
        if (len(names) + 1) * self.span >= 2**62:
            raise ValueError("time range x number of groups too large for the int64 label key")
        key = codes * self.span + (t - self.t0)
        order = group_time_order(codes, t)
        order = np.argsort(key, kind="stable") if order is None else order
        self.keys = key[order]
        self.frauds = np.zeros(len(key) + 1, dtype=np.int64)
        np.cumsum(fraud[order], out=self.frauds[1:])

    def codes_of(self, values: pd.Series, rows: I64) -> I64:
        """Codes of ``values.iloc[rows]`` in this state (-1: a value with no labelled event here)."""
        if isinstance(values.dtype, pd.CategoricalDtype):
            mapping = np.append(self.names.get_indexer(values.cat.categories), -1)  # code -1 (missing) -> -1
            return np.asarray(mapping[values.cat.codes.to_numpy()[rows]], dtype=np.int64)
        codes, uniques = pd.factorize(values.iloc[rows])
        mapping = np.append(self.names.get_indexer(uniques), -1)
        return np.asarray(mapping[codes], dtype=np.int64)

    def windows(self, codes: I64, t: I64, bounds: tuple[int, ...]) -> dict[int, tuple[I64, I64]]:
        """Per query row and offset ``b`` in ``bounds``: (labelled, frauds) of its group before ``t - b``.

        A window ``[t - b1, t - b0)`` is then the difference of the two offsets' counts. Queries are answered
        in (group, time) order - ``searchsorted`` walks the keys once - and returned in query order.
        """
        known = codes >= 0
        group = np.where(known, codes, 0)
        order = group_time_order(group, t)
        if order is None:
            order = np.asarray(np.lexsort((t, group)), dtype=np.int64)
        floor, t_sorted = group[order] * self.span, t[order]
        out = {}
        for b in bounds:
            needles = floor + np.clip(t_sorted - b - self.t0, 0, self.span - 1)
            position = np.empty(len(t), dtype=np.int64)
            position[order] = np.searchsorted(self.keys, needles, side="left")
            fraud = self.frauds[position]
            # An unknown group has no labelled events: position/fraud stay 0 in both bounds of every window.
            out[b] = (np.where(known, position, 0), np.where(known, fraud, 0))
        return out


class LabelRates:
    """Every labelled event the risk features may read, counted per merchant, per category and overall.

    This is the only door through which labels enter the features. :func:`build_features` builds it from its
    own frame by default; the streaming scorer builds it once from silver for a whole label-risk window and
    passes it in, so a micro-batch only builds its own customers' timelines (the counts are exact integers,
    so both ways give bit-identical rates for the same labelled events). It must hold every labelled event in
    ``[t - label_delay - risk_window, t - label_delay)`` of every row it serves; more (older or newer) events
    never change a result, because each rate counts only its own window.
    """

    def __init__(
        self, t: I64, merchant: tuple[I64, pd.Index], category: tuple[I64, pd.Index], label: npt.NDArray[np.int8]
    ) -> None:
        """``label`` per event: 1 fraud, 0 legitimate, -1 not known yet (dropped); groups as (codes, names)."""
        known = label >= 0
        fraud = label[known] == 1
        t_known = t[known]
        self.events = int(known.sum())
        self.merchant = _LabelCounts(merchant[0][known], merchant[1], t_known, fraud)
        self.category = _LabelCounts(category[0][known], category[1], t_known, fraud)
        self.overall = _LabelCounts(np.zeros(len(t_known), dtype=np.int64), pd.Index(["*"]), t_known, fraud)

    @classmethod
    def from_frame(cls, tx: pd.DataFrame) -> LabelRates:
        """The labelled events of a silver-shaped frame (``event_time``, ``merchant_id``, ``merchant_category``,
        ``is_fraud``)."""
        label = tx["is_fraud"]
        code = np.where(label.notna().to_numpy(), label.fillna(False).to_numpy(dtype=bool), -1).astype(np.int8)
        return cls(
            _event_ms(tx["event_time"]), _named_codes(tx["merchant_id"]), _named_codes(tx["merchant_category"]), code
        )

    def features(self, tx: pd.DataFrame, rows: I64, t: I64, config: FeatureConfig) -> dict[str, F64]:
        """``merchant_risk``, ``merchant_risk_recent``, ``merchant_labelled`` and ``category_risk`` of the
        rows ``rows`` of ``tx`` (event times ``t``, in ms)."""
        delay = _ms(config.label_delay)
        long_risk = delay + _ms(config.risk_window)
        recent = delay + _ms(config.recent_risk_window)
        smooth = config.risk_smoothing
        everyone = self.overall.windows(np.zeros(len(rows), dtype=np.int64), t, (delay, long_risk))
        base = _rate(everyone, (delay, long_risk), 0.0, None)
        merchants = self.merchant.windows(
            self.merchant.codes_of(tx["merchant_id"], rows), t, (delay, long_risk, recent)
        )
        categories = self.category.windows(self.category.codes_of(tx["merchant_category"], rows), t, (delay, long_risk))
        return {
            "merchant_risk": _rate(merchants, (delay, long_risk), smooth, base),
            "merchant_risk_recent": _rate(merchants, (delay, recent), smooth, base),
            "merchant_labelled": (merchants[delay][0] - merchants[long_risk][0]).astype(np.float64),
            "category_risk": _rate(categories, (delay, long_risk), smooth, base),
        }


def _named_codes(values: pd.Series) -> tuple[I64, pd.Index]:
    """Codes of ``values`` and the distinct values they stand for (a missing value gets -1: no group)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return np.asarray(values.cat.codes, dtype=np.int64), pd.Index(values.cat.categories)
    codes, uniques = pd.factorize(values)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques)


def _rate(counts: dict[int, tuple[I64, I64]], window: tuple[int, int], smoothing: float, prior: F64 | None) -> F64:
    """Fraud rate over the labelled events in ``[t - window[1], t - window[0])``.

    ``smoothing`` pseudo-observations at the ``prior`` rate keep a merchant with three labelled sales from
    scoring 0 % or 33 %; with ``smoothing = 0`` (no prior) an empty history gives 0.
    """
    labelled = counts[window[0]][0] - counts[window[1]][0]
    frauds = counts[window[0]][1] - counts[window[1]][1]
    if prior is None:
        return np.asarray(np.where(labelled > 0, frauds / np.maximum(labelled, 1), 0.0), dtype=np.float64)
    return np.asarray((frauds + smoothing * prior) / (labelled + smoothing), dtype=np.float64)
