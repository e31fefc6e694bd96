"""Skip a replayed micro-batch on an append-only Delta table without Delta's ``txnAppId`` check.

Workaround for: Delta 4.4 answers a ``txnAppId`` check by rebuilding the table state with Spark jobs on every
append. Delete when Delta looks the app's transaction up incrementally (compare a bronze append's Spark jobs
with and without ``txnAppId`` on a new Delta release).

Spark replays the last batch of a query whose sink committed but whose checkpoint did not (a crash between
the two). ``txnAppId``/``txnVersion`` makes Delta skip such a batch, but Delta 4.4 answers "which version did
this app commit last?" by rebuilding the table state with Spark jobs on *every* append, a fixed cost per
batch on the bronze table whatever the batch size. A replay can only be the first batch a query run executes, so
the question needs answering once per run:

* every append is tagged in its commit's ``userMetadata`` (``{"shoplake_app": ..., "batch": ...}``);
* the first batch of a run looks the query's last tagged commit up with delta-rs (commit infos, newest
  first, no Spark job) and skips the batch if it is not newer;
* later batches of the run are newer by construction (the run committed the one before), so no lookup.

A newer commit tagged by another app id (a reset checkpoint writing the same table) ends the search: this
app's batches start over and nothing of it was committed after that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from deltalake import DeltaTable

TAG: Final = "shoplake_app"
_PAGE: Final = 100


@dataclass
class ReplayGuard:
    """Which batches of one streaming query run an append-only Delta table already holds."""

    table_uri: str
    app_id: str
    _last_committed: int | None = None

    def user_metadata(self, batch_id: int) -> str:
        """The ``userMetadata`` option of the append that commits ``batch_id``."""
        return json.dumps({TAG: self.app_id, "batch": batch_id}, sort_keys=True)

    def committed(self, batch_id: int) -> bool:
        """True when ``batch_id`` is already in the table (a replay), so its append must be skipped."""
        if self._last_committed is None:
            self._last_committed = self._lookup()
        return batch_id <= self._last_committed

    def record(self, batch_id: int) -> None:
        """``batch_id`` was committed (or found committed) by this run."""
        self._last_committed = batch_id

    def forget(self) -> None:
        """After a failed batch nothing is assumed: the next batch looks the table up again."""
        self._last_committed = None

    def _lookup(self) -> int:
        tagged = _last_tagged_batch(DeltaTable(self.table_uri), self.app_id)
        return -1 if tagged is None else tagged


def _last_tagged_batch(table: DeltaTable, app_id: str) -> int | None:
    """The batch of the newest commit tagged by ``app_id``; None if another app's tag or the start comes first.

    delta-rs reads history newest first up to a limit, so a longer search asks for a 4x longer history and
    checks only the commits it has not checked yet (at most ~1/3 of the reading is repeated).
    """
    limit, checked = _PAGE, 0
    while True:
        commits = table.history(limit)
        for commit in commits[checked:]:
            tag = _tag(commit)
            if tag is not None:
                return int(tag["batch"]) if tag.get(TAG) == app_id else None
        if len(commits) < limit:
            return None
        checked, limit = len(commits), limit * 4


def _tag(commit: dict[str, Any]) -> dict[str, Any] | None:
    raw = commit.get("userMetadata")
    if not isinstance(raw, str):
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and TAG in parsed and "batch" in parsed else None
