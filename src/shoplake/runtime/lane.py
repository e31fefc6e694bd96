"""A lane is the streaming state one installation builds up: the queries' checkpoints and the Delta tables.

Older Shoplake versions left two layouts this one cannot continue:

* the staged pipeline's checkpoints (``bronze``, ``silver``, ``warehouse``): those queries read Kafka into
  bronze with offsets of their own, so the ``medallion`` query cannot tell where they stopped;
* gold as one stateful query per table (``checkpoints/gold/<table>``) into tables partitioned by the hour:
  the ``gold`` query merges each batch into tables partitioned by day, with other columns.

:func:`check` refuses such a lane before any query starts, naming what it found and the command that fixes it.
:func:`reset` (``shoplake stream reset``) moves the checkpoints and tables aside, under
``{SHOPLAKE_HOME}/retired/<time>/``, never deleting them: the next run rebuilds them from Kafka (everything) or
from silver (``gold`` only). PostgreSQL's ``raw`` tables are kept: their upserts are keyed, so the rebuild
rewrites the same rows.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from shoplake.pipeline.config import StreamingConfig

STAGED: Final = ("bronze", "silver", "warehouse")
SCOPES: Final = ("all", "gold")


class LaneError(RuntimeError):
    """The lane was left by an older version; the message says what was found and how to reset it."""


@dataclass(frozen=True)
class Finding:
    what: str
    scope: str  # the reset that clears it


def _partitioned_by(path: Path) -> list[str] | None:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return list(DeltaTable(str(path)).metadata().partition_columns)
    except TableNotFoundError:
        return None


def _gold_tables(cfg: StreamingConfig) -> list[Path]:
    return [cfg.gold_hourly_sales_path, cfg.gold_customer_windows_path, cfg.gold_fraud_rates_path]


def _old_gold_values(cfg: StreamingConfig) -> Path:
    """Where older versions kept the values of customer_behaviour's large distinct counts."""
    return cfg.gold_customer_windows_path.with_name(f"{cfg.gold_customer_windows_path.name}_values")


def findings(cfg: StreamingConfig) -> list[Finding]:
    """What of an older layout the lane holds (empty for a current or a new lane)."""
    found = [
        Finding(f"checkpoint of the staged query {query!r} ({cfg.checkpoint_root / query})", "all")
        for query in STAGED
        if (cfg.checkpoint_root / query).is_dir()
    ]
    gold = cfg.checkpoint("gold")
    found += [
        Finding(f"per-table gold checkpoint {sub}", "gold")
        for sub in sorted(gold.iterdir() if gold.is_dir() else [])
        if (sub / "metadata").is_file()
    ]
    found += [
        Finding(f"gold table {path} partitioned by {columns}, not ['event_date']", "gold")
        for path in _gold_tables(cfg)
        if (columns := _partitioned_by(path)) is not None and columns != ["event_date"]
    ]
    if _old_gold_values(cfg).is_dir():
        found.append(Finding(f"gold helper table {_old_gold_values(cfg)}", "gold"))
    return found


def check(cfg: StreamingConfig) -> None:
    """Raise :class:`LaneError` if the lane holds state of an older layout (see the module doc)."""
    found = findings(cfg)
    if not found:
        return
    scope = "all" if any(f.scope == "all" for f in found) else "gold"
    command = "shoplake stream reset" + (" --only gold" if scope == "gold" else "")
    rebuilt = "from silver" if scope == "gold" else "from Kafka"
    raise LaneError(
        "this lane was left by an older Shoplake version that this one cannot continue:\n  "
        + "\n  ".join(f.what for f in found)
        + f"\nRun `{command}`: it moves that state aside (kept under SHOPLAKE_HOME/retired/) and the next run "
        f"rebuilds it {rebuilt}."
    )


def retired_items(cfg: StreamingConfig, scope: str) -> list[Path]:
    """What :func:`reset` moves for ``scope`` ("all": every checkpoint and streaming table; "gold": gold's)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown reset scope {scope!r}; expected one of {SCOPES}")
    gold = [cfg.checkpoint("gold"), *_gold_tables(cfg), _old_gold_values(cfg)]
    everything = [
        cfg.checkpoint_root,
        cfg.bronze_path,
        cfg.silver_path,
        cfg.quarantine_path,
        *_gold_tables(cfg),
        _old_gold_values(cfg),
        cfg.gold_fraud_alerts_path,
    ]
    return [path for path in (gold if scope == "gold" else everything) if path.exists()]


def reset(cfg: StreamingConfig, home: Path, scope: str, now: datetime | None = None) -> Path | None:
    """Move :func:`retired_items` under ``home/retired/<UTC time>/``; returns that folder (None: nothing to move).

    Each item keeps its path relative to its root (the checkpoint root's parent or the Delta root), so the
    retired folder shows what came from where. A crash half-way leaves the rest in place, and running the reset
    again moves it.
    """
    items = retired_items(cfg, scope)
    if not items:
        return None
    target = home / "retired" / (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    for path in items:
        destination = target / _relative(path, cfg)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(destination))
    return target


def _relative(path: Path, cfg: StreamingConfig) -> Path:
    roots = [(cfg.checkpoint_root.parent, "home")]
    if cfg.settings is not None:
        roots.insert(0, (cfg.settings.lake.base_path, "delta"))
    for root, label in roots:
        if path.is_relative_to(root):
            return Path(label) / path.relative_to(root)
    return Path("other") / path.name
