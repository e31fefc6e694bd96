"""Quarantine contents: how many rows were set aside and for which reasons (the first thing to fix upstream).

Reads only the ``reason`` column of the quarantine Delta table (delta-rs + Arrow, no JVM), so it stays
cheap even on a large table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def reasons(path: Path, top: int = 5) -> dict[str, Any]:
    """``{"rows": n, "top_reasons": [{"reason": r, "rows": k}, ...]}``; an absent table has no rows."""
    if not (path / "_delta_log").is_dir():
        return {"rows": 0, "top_reasons": []}
    from deltalake import DeltaTable

    column = DeltaTable(str(path)).to_pyarrow_dataset().to_table(columns=["reason"])
    counts = column.group_by("reason").aggregate([("reason", "count")]).to_pylist()
    ranked = sorted(counts, key=lambda r: (-int(r["reason_count"]), str(r["reason"])))
    return {
        "rows": column.num_rows,
        "top_reasons": [{"reason": str(r["reason"]), "rows": int(r["reason_count"])} for r in ranked[:top]],
    }
