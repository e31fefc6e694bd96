"""Which of a micro-batch's ``transaction_id``s silver already holds, answered without a Spark job.

The dedup check used to be a Spark read of silver joined with the batch: Delta rebuilt the table state for
file skipping and ran two to three jobs, a large share of every batch on two cores, whatever its size.
This lookup works from the Delta log instead: :mod:`shoplake.lakehouse.file_index` follows silver's files and each one's
``event_time`` min/max commit by commit, and only the ``transaction_id`` column of the files whose range
overlaps the batch is read. Parquet files are immutable, so the ids of the files the last batch overlapped
are kept for the next one (a steady stream overlaps the same few recent files batch after batch); files the
last batch did not touch are dropped, so memory follows the working set, never the table (and never exceeds
:attr:`SilverIds.max_cached_ids`).

Correctness rests on one property of the data: a transaction id names one payment attempt with one event
time, so every copy of it lands in a file whose event-time range contains that time. Files without
statistics are always read. A table with deletion vectors is refused (its parquet files may hold deleted
rows, which would wrongly drop a new record), and so is one whose commits a catalog keeps outside the log:
the caller falls back to the Spark join.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shoplake.lakehouse.file_index import DeltaFiles, UnsupportedTableError

# Delta keeps timestamp statistics at millisecond precision (truncated): widen the batch range by one tick.
_STATS_SLACK: Final = timedelta(milliseconds=1)


class LookupUnavailableError(RuntimeError):
    """The table cannot be checked from its log and parquet files alone (deletion vectors): use the Spark join."""


@dataclass
class SilverIds:
    """Incremental view of silver's ids for the dedup check of one streaming query (one per query run)."""

    table_uri: str
    max_cached_ids: int = 1_000_000
    _cache: dict[str, pa.Array] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._files = DeltaFiles(self.table_uri, "event_time")

    def stored(self, ids: pa.Array | pa.ChunkedArray, low: datetime, high: datetime) -> pa.Array:
        """The distinct values of ``ids`` already in silver; ``low``/``high`` bound the batch's event times."""
        if low.tzinfo is None or high.tzinfo is None:
            raise ValueError("low and high must be timezone-aware (UTC) datetimes")
        try:
            paths = self._files.overlapping(low - _STATS_SLACK, high + _STATS_SLACK)
        except UnsupportedTableError as exc:
            raise LookupUnavailableError(str(exc)) from exc
        wanted = pc.unique(ids)
        previous, self._cache = self._cache, {}
        kept = 0
        found = []
        for path in paths:
            file_ids = previous.get(path)
            if file_ids is None:
                file_ids = self._read_ids(path)
            if kept + len(file_ids) <= self.max_cached_ids:
                self._cache[path] = file_ids
                kept += len(file_ids)
            found.append(file_ids.filter(pc.is_in(file_ids, value_set=wanted)))
        if not found:
            return pa.array([], pa.string())
        return pc.unique(pa.chunked_array(found, pa.string()).combine_chunks())

    def _read_ids(self, path: str) -> pa.Array:
        location = path if "://" in path or path.startswith("/") else f"{self.table_uri.rstrip('/')}/{path}"
        filesystem, local = pafs.FileSystem.from_uri(location if "://" in location else f"file://{location}")
        column = pq.read_table(local, columns=["transaction_id"], filesystem=filesystem).column("transaction_id")
        return column.combine_chunks().cast(pa.string())
