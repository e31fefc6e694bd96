"""Read a time window of silver transactions (plus the history its features need) from Delta.

delta-rs (the ``deltalake`` package) reads the table straight into Arrow: no JVM start (a SparkSession's
start alone would outlast the read), partition pruning on ``event_date`` and a row filter on ``event_time``,
so the extract is a small part of a training run (BENCHMARKS.md, "ML"). Low-cardinality and id columns are
dictionary-encoded on the way to pandas, which is what makes the feature code's factorisations nearly free.

Rows come back in a canonical order (event time, then transaction id), so the same window always yields the
same frame no matter how the table's files happen to be laid out - the basis of reproducible training.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from shoplake.config import Settings
from shoplake.ml.features import INPUT_COLUMNS

# What the ML code reads from silver: the feature inputs plus the id and the evaluation-only pattern.
EXTRACT_COLUMNS: Final = ("transaction_id", *INPUT_COLUMNS, "fraud_pattern")
_DICTIONARY_COLUMNS: Final = (
    "customer_id",
    "merchant_id",
    "merchant_category",
    "merchant_country",
    "currency",
    "payment_method",
    "channel",
    "device_id",
    "device_type",
    "ip_country",
    "status",
    "fraud_pattern",
)
_THREADS: Final = 2  # the machine's cores; more threads only add switching


class ExtractError(RuntimeError):
    """The silver table is missing, lacks columns, or the window is empty/invalid."""


@dataclass(frozen=True)
class Window:
    """A half-open event-time window ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() != timedelta(0):
                raise ValueError(f"window {name} must be a UTC-aware datetime, got {value!r}")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end.isoformat()} must be after start {self.start.isoformat()}")

    def as_params(self) -> dict[str, str]:
        return {"window_start": self.start.isoformat(), "window_end": self.end.isoformat()}


def silver_path(settings: Settings) -> Path:
    """Where the streaming jobs write silver (the streaming config file names the table)."""
    from shoplake.pipeline.config import load_streaming_config

    return load_streaming_config(settings).silver_path


def read_transactions(path: Path, start: datetime, end: datetime) -> pd.DataFrame:
    """Silver rows with ``start <= event_time < end`` in canonical order, as pandas (categorical ids)."""
    window = Window(start, end)
    try:
        table = DeltaTable(str(path))
    except TableNotFoundError as exc:
        raise ExtractError(
            f"no Delta table at {path}: run the streaming jobs first (`shoplake stream run --once`)"
        ) from exc
    names = set(table.schema().to_arrow().names)
    missing = [c for c in EXTRACT_COLUMNS if c not in names]
    if missing:
        raise ExtractError(f"Delta table {path} lacks column(s) {missing}")
    dataset = table.to_pyarrow_dataset()
    lo = pa.scalar(window.start, type=pa.timestamp("us", tz="UTC"))
    hi = pa.scalar(window.end, type=pa.timestamp("us", tz="UTC"))
    time = ds.field("event_time")
    row_filter = (time >= lo) & (time < hi)
    if "event_date" in names:
        # Partition pruning: only the date folders the window touches are opened.
        first, last = window.start.date(), (window.end - timedelta(microseconds=1)).date()
        row_filter &= (ds.field("event_date") >= pa.scalar(first)) & (ds.field("event_date") <= pa.scalar(last))
    data = dataset.to_table(columns=list(EXTRACT_COLUMNS), filter=row_filter)
    return to_frame(data)


def to_frame(data: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas in canonical order with the id/category columns dictionary-encoded.

    Encoding comes first: reordering a dictionary column moves 4-byte indices, not strings. The unique
    ``transaction_id`` stays Arrow-backed (``pd.ArrowDtype``): turning the ids into Python strings was the
    largest single cost of a scoring run, and its only consumers (ordering, the scores table) want Arrow.
    Columns are encoded and reordered on two threads (Arrow's kernels release the GIL; each column's result
    is the same whichever thread computes it).
    """

    def encode(name: str) -> pa.ChunkedArray:
        column = data.column(name)
        if name in _DICTIONARY_COLUMNS:
            return pc.dictionary_encode(column)
        if name == "event_time":
            return column.cast(pa.timestamp("ms", tz="UTC"))
        return column

    with ThreadPoolExecutor(_THREADS) as pool:
        encoded = pa.table(dict(zip(data.column_names, pool.map(encode, data.column_names), strict=True)))
        order = pc.sort_indices(encoded, sort_keys=[("event_time", "ascending"), ("transaction_id", "ascending")])
        ordered = pa.table(
            dict(zip(encoded.column_names, pool.map(lambda c: c.take(order), encoded.columns), strict=True))
        )
    return ordered.to_pandas(split_blocks=True, self_destruct=True, types_mapper=_arrow_strings)


def _arrow_strings(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    """Plain (non-dictionary) string columns stay in Arrow memory; everything else converts as usual."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return pd.ArrowDtype(arrow_type)
    return None


def load_window(settings: Settings, window: Window, history: timedelta) -> tuple[pd.DataFrame, pd.Series]:
    """Transactions of ``window`` plus ``history`` before it; returns (frame, mask of the window's rows).

    The history rows feed the features of the window's first rows and are never trained on or scored.
    """
    if history < timedelta(0):
        raise ValueError(f"history must be >= 0, got {history}")
    frame = read_transactions(silver_path(settings), window.start - history, window.end)
    in_window = frame["event_time"] >= pd.Timestamp(window.start)
    if not bool(in_window.any()):
        raise ExtractError(f"no silver transactions between {window.start.isoformat()} and {window.end.isoformat()}")
    return frame, in_window


def time_range(settings: Settings) -> tuple[datetime, datetime]:
    """Earliest and latest ``event_time`` in silver (reads one column), for default CLI/DAG windows."""
    path = silver_path(settings)
    try:
        table = DeltaTable(str(path))
    except TableNotFoundError as exc:
        raise ExtractError(f"no Delta table at {path}: run the streaming jobs first") from exc
    times = table.to_pyarrow_dataset().to_table(columns=["event_time"]).column("event_time")
    if len(times) == 0:
        raise ExtractError(f"silver table {path} is empty")
    bounds = pc.min_max(times)
    return bounds["min"].as_py().astimezone(UTC), bounds["max"].as_py().astimezone(UTC)


def default_window(settings: Settings, days: float) -> Window:
    """The last ``days`` of silver (ending just after its latest event), clipped to the data's start."""
    first, last = time_range(settings)
    end = last + timedelta(milliseconds=1)
    return Window(max(first, end - timedelta(days=days)), end)


def resolve_window(settings: Settings, start: str | None, end: str | None, default_days: float) -> Window:
    """A window from optional ISO bounds; a missing bound comes from the data (latest ``default_days``)."""
    if start and end:
        return Window(parse_utc(start), parse_utc(end))
    default = default_window(settings, default_days)
    return Window(parse_utc(start) if start else default.start, parse_utc(end) if end else default.end)


def parse_utc(text: str) -> datetime:
    """An ISO-8601 date or timestamp as a UTC datetime (naive input is taken as UTC)."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
