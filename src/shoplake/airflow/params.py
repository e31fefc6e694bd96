"""DAG Params: validated when a run is created, so a bad ``conf`` is refused before any task runs.

``num_transactions`` may be omitted (null): the task then takes the Variable ``data_platform_num_transactions``
and, failing that, :data:`DEFAULT_NUM_TRANSACTIONS`. Params cannot read Variables themselves without a
metadata-DB query at every DAG parse, hence the two steps.
"""

from __future__ import annotations

from typing import Any, Final

from airflow.sdk import Param

from shoplake.config import Settings

DEFAULT_NUM_TRANSACTIONS: Final = 1_000
NUM_TRANSACTIONS_VARIABLE: Final = "data_platform_num_transactions"
SEED_DEFAULT: Final = 42
MAX_SEED: Final = 2**63 - 1  # the generator's seed range (numpy's SeedSequence takes any, Kafka ids do not)
# Month 01-12, day 01-31, hour 00-23, minute/second 00-59: "2026-13-45" is refused with the run, not by a task.
_DATE: Final = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME: Final = r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?"


def ingestion_params(settings: Settings) -> dict[str, Param]:
    return {
        "num_transactions": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=settings.ingest.max_transactions,
            description=(
                f"Transactions to generate (1..{settings.ingest.max_transactions}); empty = Variable "
                f"{NUM_TRANSACTIONS_VARIABLE}, else {DEFAULT_NUM_TRANSACTIONS}"
            ),
        ),
        "seed": Param(
            SEED_DEFAULT,
            type="integer",
            minimum=0,
            maximum=MAX_SEED,
            description="generator seed (same seed = same data)",
        ),
        "start": Param(
            None,
            type=["null", "string"],
            pattern=rf"^{_DATE}T{_TIME}(Z|[+-]\d{{2}}:\d{{2}})$",
            description="event-time start, ISO-8601 with zone (empty = span_days, default 1 h, before the run was due)",
        ),
        "span_days": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            maximum=3660,
            description="event-time days the run covers (empty = 1 h, or the generator's density with a start)",
        ),
    }


def resolve_num_transactions(settings: Settings, from_conf: Any, from_variable: str | None) -> int:
    """Run conf, else the Variable, else the default; the Variable is validated like the conf."""
    if from_conf is not None:
        return int(from_conf)
    if from_variable is None or not from_variable.strip():
        return DEFAULT_NUM_TRANSACTIONS
    try:
        value = int(from_variable.strip())
    except ValueError:
        raise ValueError(f"Variable {NUM_TRANSACTIONS_VARIABLE}={from_variable!r} is not an integer") from None
    if not 1 <= value <= settings.ingest.max_transactions:
        raise ValueError(
            f"Variable {NUM_TRANSACTIONS_VARIABLE}={value} is outside 1..{settings.ingest.max_transactions}"
        )
    return value


def gate_override(name: str, raw: str | None) -> float | None:
    """An ``ml_min_*`` Variable as a fraction, None when unset; a bad value is an error, not a silent default."""
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"Variable {name}={raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Variable {name}={value} must be between 0 and 1")
    return value


_ISO = rf"^{_DATE}(T{_TIME}(Z|[+-]\d{{2}}:\d{{2}})?)?$"


def training_params() -> dict[str, Param]:
    """The ML DAG's optional training window (default: the latest ``window_days`` of silver)."""
    return {
        "window_start": Param(None, type=["null", "string"], pattern=_ISO, description="ISO date/time UTC"),
        "window_end": Param(None, type=["null", "string"], pattern=_ISO, description="ISO date/time UTC, exclusive"),
        "window_days": Param(28, type="number", exclusiveMinimum=0, maximum=3660, description="default length"),
    }
