"""Task bodies of ``data_ingestion_pipeline``: health checks, one idempotent ingestion run, verification.

The run key is derived from the DAG run id, so a retried ``seed_transactions`` regenerates the very same
transactions (same ids) and the downstream dedup on ``transaction_id`` absorbs the repeat. Producing and
verifying are separate tasks: the offsets captured before producing travel through XCom, and verification
checks that every partition's end offset grew by exactly what was delivered.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from shoplake.airflow.params import resolve_num_transactions
from shoplake.config import Settings


def check_kafka_health(settings: Settings) -> dict[str, Any]:
    from shoplake.ingestion.topics import check_kafka

    return check_kafka(settings)


def check_schema_registry(settings: Settings) -> dict[str, Any]:
    from shoplake.contracts.registry import check_schema_registry as check

    subjects = check(settings)
    return {"url": settings.registry.url, "subjects": subjects}


def event_window(conf_start: str | None, span_days: float | None, run_after: datetime) -> tuple[str, timedelta | None]:
    """(start, span) of the generated events.

    Without a conf start the run covers the hour before it was due (``[run_after - 1 h, run_after)``, or
    ``span_days`` back), so a scheduled run never produces events from the future; with a start and no
    span the generator's density decides the span.
    """
    if span_days is not None and not (isinstance(span_days, int | float) and math.isfinite(span_days)):
        # JSON Schema lets NaN through every bound (json.loads accepts NaN in `dags trigger --conf`).
        raise ValueError(f"span_days must be a finite number of days, got {span_days!r}")
    span = timedelta(days=span_days) if span_days is not None else None
    if conf_start:
        return conf_start, span
    span = span or timedelta(hours=1)
    return (run_after.astimezone(UTC).replace(microsecond=0) - span).isoformat(), span


def seed_transactions(
    settings: Settings,
    *,
    num_transactions: Any,
    variable_value: str | None,
    seed: int,
    start: str,
    span: timedelta | None,
    run_key: str,
) -> dict[str, Any]:
    """Produce the run's transactions (verification is the next task); returns the JSON-able result."""
    from shoplake.ingestion.run import ingest

    n = resolve_num_transactions(settings, num_transactions, variable_value)
    return ingest(settings, n, seed, start, run_key, span=span, verify=False).to_dict()


def verify_kafka_topic(settings: Settings, seeded: dict[str, Any]) -> dict[str, Any]:
    from shoplake.ingestion.verify import verify_kafka_topic as verify

    result = verify(settings, seeded["offsets_before"], seeded["delivered_per_partition"], topic=seeded["topic"])
    return result.to_dict()
