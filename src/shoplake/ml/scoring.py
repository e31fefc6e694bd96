"""Batch scoring of a Delta window with the production model, written to ``gold/fraud_scores``.

The model is whatever ``models:/fraud-detection-model@production`` names at the start of the call. The alias
is resolved to a version number once and that exact version is loaded, so the threshold and feature horizons
read from the version always match the weights used even if the alias moves mid-run. Features come from
:func:`shoplake.ml.features.build_features` with the version's own :class:`FeatureConfig` - the code path
training used - over the window plus the history it requires. The output replaces the window's previous
scores (a predicate overwrite), so re-scoring a window is idempotent.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shoplake.config import Settings
from shoplake.ml import registry, train
from shoplake.ml.extract import Window, load_window
from shoplake.ml.features import LabelRates, build_features

SCORES_TABLE: Final = "gold/fraud_scores"


class NoProductionModelError(RuntimeError):
    """No version carries the production alias yet: train and deploy one first (`shoplake train`)."""


@dataclass(frozen=True)
class ScoreResult:
    rows: int
    flagged: int
    model_version: str
    threshold: float
    seconds: float
    output: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rows_per_second": self.rows_per_second}


def scores_path(settings: Settings) -> Path:
    return settings.lake.base_path / SCORES_TABLE


def score_frame(
    model: Any, spec: registry.VersionSpec, frame: pd.DataFrame, target: Any, labels: LabelRates | None = None
) -> pa.Table:
    """Scores of the ``target`` rows of ``frame`` (history + window) with one model version, as Arrow.

    ``labels``: the label-rate state for the risk features when ``frame`` lacks other customers' rows (the
    streaming scorer); by default they come from ``frame`` itself.
    """
    features = build_features(frame, spec.feature_config, target=target, labels=labels, categorical=True)
    scores = train.fraud_scores(model, features)
    rows = frame.loc[features.index]

    def text(name: str) -> pa.Array:
        # Categorical columns arrive as dictionaries; casting in Arrow avoids a Python string per row.
        return pa.array(rows[name]).cast(pa.string())

    event_time = pa.array(rows["event_time"]).cast(pa.timestamp("us", tz="UTC"))
    n = len(scores)
    return pa.table(
        {
            "transaction_id": text("transaction_id"),
            "event_time": event_time,
            "customer_id": text("customer_id"),
            "merchant_id": text("merchant_id"),
            "amount_cents": pa.array(rows["amount_cents"].to_numpy(dtype=np.int64)),
            "currency": text("currency"),
            "fraud_score": pa.array(scores),
            "is_flagged": pa.array(scores >= spec.threshold),
            "threshold": pa.array(np.full(n, spec.threshold)),
            "model_version": pa.array([spec.version] * n, pa.string()) if n else pa.array([], pa.string()),
            "event_date": event_time.cast(pa.date32()),
        }
    )


def production_spec(settings: Settings) -> tuple[Any, registry.VersionSpec]:
    """The production model and its spec, resolved once (alias -> version number -> that version)."""
    client = registry.client(settings)
    version = registry.production_version(client, settings.ml.model_name)
    if version is None:
        raise NoProductionModelError(
            f"no version of {settings.ml.model_name} has the alias @{registry.PRODUCTION_ALIAS}; "
            "run `shoplake train` (it deploys when the gates pass)"
        )
    spec = registry.version_spec(client, version)
    return registry.load_model(settings, spec.version), spec


def score_window(settings: Settings, window: Window, *, write: bool = True) -> ScoreResult:
    """Score every silver transaction in ``window`` with the production model; write to gold/fraud_scores."""
    model, spec = production_spec(settings)
    started = time.perf_counter()
    frame, in_window = load_window(settings, window, spec.feature_config.required_history())
    scored = score_frame(model, spec, frame, in_window.to_numpy())
    output = scores_path(settings)
    if write:
        write_scores(output, scored, window)
    seconds = time.perf_counter() - started
    return ScoreResult(
        rows=scored.num_rows,
        flagged=int(pc.sum(scored.column("is_flagged")).as_py() or 0),
        model_version=spec.version,
        threshold=spec.threshold,
        seconds=seconds,
        output=str(output),
    )


def write_scores(path: Path, scored: pa.Table, window: Window) -> None:
    """Replace the window's rows of the scores table (created on first use, partitioned by event date)."""
    from deltalake import write_deltalake

    start = window.start.strftime("%Y-%m-%d %H:%M:%S.%f")
    end = window.end.strftime("%Y-%m-%d %H:%M:%S.%f")
    predicate = f"event_time >= '{start}' AND event_time < '{end}'"
    if (path / "_delta_log").is_dir():
        write_deltalake(str(path), scored, mode="overwrite", predicate=predicate, partition_by=["event_date"])
    else:
        write_deltalake(str(path), scored, mode="overwrite", partition_by=["event_date"])
