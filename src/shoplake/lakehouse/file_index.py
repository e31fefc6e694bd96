"""A Delta table's live data files with one column's min/max, followed commit by commit from its log.

Workaround for: deltalake (delta-rs) 1.6's ``update_incremental`` rebuilds the whole file list. Delete when
delta-rs refreshes a loaded table's file list incrementally.

The silver dedup lookup (:mod:`shoplake.pipeline.silver.dedup`) asks every micro-batch which files'
``event_time`` range meets the batch. delta-rs answers that with ``update_incremental`` and ``get_add_actions``,
but the update rebuilds the whole file list each time, a cost that grew with silver over a soak (commit
fd8dcb9). Here delta-rs loads the file list once; each refresh
then reads only the commit files written since (one or two small JSON files per batch), so a refresh costs
what was committed, not what the table holds.

Delta commits are numbered without gaps and the log cleanup deletes only the oldest ones, below a checkpoint.
So when the next commit file is missing, either the table has no newer version, or the log was cleaned past
this reader (it sat idle for longer than the log retention). ``_last_checkpoint`` tells the two apart, and the
second reloads from delta-rs. A table whose files cannot be judged from their statistics and paths alone
(deletion vectors, or commits kept by a catalog instead of the log) is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from deltalake import DeltaTable

_REFUSED_FEATURES: Final = frozenset({"deletionVectors", "catalogManaged", "catalogOwned-preview"})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
# Commits read since the last load are folded into the Arrow listing once they reach this many changes.
_FOLD_AT: Final = 1024

Range = tuple[int | None, int | None]  # a file's min and max in microseconds since the epoch; None: no statistics


class UnsupportedTableError(RuntimeError):
    """The table's files cannot be judged from the log alone (deletion vectors, catalog-managed commits)."""


@dataclass
class DeltaFiles:
    """The live files of the Delta table at ``table_uri`` and the range of its timestamp ``column`` in each."""

    table_uri: str
    column: str
    _version: int = -1
    _listed: pa.Table | None = None  # path, lo, hi (int64 microseconds) as of the last load or fold
    _added: dict[str, Range] = field(default_factory=dict)  # files added by the commits read since
    _removed: set[str] = field(default_factory=set)  # listed files removed by the commits read since

    def overlapping(self, low: datetime, high: datetime) -> list[str]:
        """Paths (relative to the table, or absolute) of the files whose range meets ``[low, high]``.

        Brings the listing up to the table's latest version first. A file without statistics for the column
        may hold anything, so it is always included.
        """
        self._refresh()
        listed = self._still_listed()
        lo, hi = _micros(low), _micros(high)
        file_lo, file_hi = listed.column("lo"), listed.column("hi")
        keep = pc.fill_null(pc.and_kleene(pc.less_equal(file_lo, hi), pc.greater_equal(file_hi, lo)), True)
        paths = [str(p) for p in listed.column("path").filter(keep).to_pylist()]
        return paths + [p for p, (f_lo, f_hi) in self._added.items() if _meets(f_lo, f_hi, lo, hi)]

    def _still_listed(self) -> pa.Table:
        """The listing without the files removed by the commits read since it was made."""
        assert self._listed is not None
        if not self._removed:
            return self._listed
        gone = pc.is_in(self._listed.column("path"), pa.array(self._removed, pa.string()))
        return self._listed.filter(pc.invert(gone))

    def _refresh(self) -> None:
        if self._listed is None:
            self._load()
            return
        read = 0
        while (actions := self._commit(self._version + 1)) is not None:
            self._apply(actions)
            self._version += 1
            read += 1
        if read == 0 and self._checkpointed_version() > self._version:
            self._load()  # the log was cleaned past this reader: start again from the table's state
        elif len(self._added) + len(self._removed) >= _FOLD_AT:
            self._fold()

    def _load(self) -> None:
        table = DeltaTable(self.table_uri)
        protocol = table.protocol()
        _check_features([*(protocol.reader_features or []), *(protocol.writer_features or [])], self.table_uri)
        adds = pa.table(table.get_add_actions(flatten=True))
        paths = pa.array([unquote(str(p)) for p in adds.column("path").to_pylist()], pa.string())
        lo, hi = self._bound(adds, f"min.{self.column}"), self._bound(adds, f"max.{self.column}")
        self._listed = pa.table({"path": paths, "lo": lo, "hi": hi})
        self._version = table.version()
        self._added, self._removed = {}, set()

    @staticmethod
    def _bound(adds: pa.Table, name: str) -> pa.Array:
        if name not in adds.schema.names:
            return pa.nulls(adds.num_rows, pa.int64())
        column = adds.column(name).combine_chunks()
        return column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())

    def _fold(self) -> None:
        added = pa.table(
            {
                "path": pa.array(list(self._added), pa.string()),
                "lo": pa.array([r[0] for r in self._added.values()], pa.int64()),
                "hi": pa.array([r[1] for r in self._added.values()], pa.int64()),
            }
        )
        self._listed = pa.concat_tables([self._still_listed(), added]).combine_chunks()
        self._added, self._removed = {}, set()

    def _apply(self, actions: list[dict[str, Any]]) -> None:
        for action in actions:
            if "add" in action:
                add = action["add"]
                self._added[unquote(add["path"])] = _stats_range(add.get("stats"), self.column)
            elif "remove" in action:
                path = unquote(action["remove"]["path"])
                self._added.pop(path, None)
                self._removed.add(path)
            elif "protocol" in action:
                protocol = action["protocol"]
                features = [*(protocol.get("readerFeatures") or []), *(protocol.get("writerFeatures") or [])]
                _check_features(features, self.table_uri)

    def _commit(self, version: int) -> list[dict[str, Any]] | None:
        """The actions of commit ``version``, or None when its file does not exist."""
        text = self._read_log_file(f"{version:020d}.json")
        return None if text is None else [json.loads(line) for line in text.splitlines() if line.strip()]

    def _checkpointed_version(self) -> int:
        text = self._read_log_file("_last_checkpoint")
        return -1 if text is None else int(json.loads(text)["version"])

    def _read_log_file(self, name: str) -> str | None:
        filesystem, log_dir = self._log_location
        try:
            with filesystem.open_input_stream(f"{log_dir}/{name}") as stream:
                return bytes(stream.read()).decode("utf-8")
        except FileNotFoundError:
            return None

    @cached_property
    def _log_location(self) -> tuple[pafs.FileSystem, str]:
        uri = self.table_uri if "://" in self.table_uri else f"file://{Path(self.table_uri).absolute()}"
        filesystem, root = pafs.FileSystem.from_uri(uri.rstrip("/"))
        return filesystem, f"{root}/_delta_log"


def _check_features(features: list[str], table_uri: str) -> None:
    refused = sorted(_REFUSED_FEATURES.intersection(features))
    if refused:
        raise UnsupportedTableError(f"{table_uri} uses {', '.join(refused)}: its files' statistics are not enough")


def _stats_range(stats: str | None, column: str) -> Range:
    """The column's (min, max) in a commit's ``add.stats`` JSON; None where the statistic is missing."""
    if not stats:
        return None, None
    parsed = json.loads(stats)
    low, high = parsed.get("minValues", {}).get(column), parsed.get("maxValues", {}).get(column)
    return _parse_micros(low), _parse_micros(high)


def _parse_micros(value: str | None) -> int | None:
    """A Delta statistics timestamp (ISO 8601; no offset means UTC) in microseconds since the epoch."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return _micros(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _meets(file_lo: int | None, file_hi: int | None, lo: int, hi: int) -> bool:
    return (file_lo is None or file_lo <= hi) and (file_hi is None or file_hi >= lo)
