"""The silver expectations (pure, on Arrow tables): each one passes on clean data and fails on its defect."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from shoplake.quality import checks
from shoplake.quality.audit import ALLOWED_CODES, DataQualityError, publish_gate


def _silver(**overrides: list[object]) -> pa.Table:
    cols: dict[str, list[object]] = {
        "transaction_id": ["a", "b", "c"],
        "amount_cents": [100, 250, 1],
        "event_hour": [0, 12, 23],
        "currency": ["USD", "EUR", "GBP"],
        "merchant_category": ["grocery", "electronics", "grocery"],
    }
    cols.update(overrides)
    return pa.table(cols)


@pytest.mark.unit
def test_not_null_names_the_columns_with_nulls() -> None:
    assert checks.not_null(_silver(), ["transaction_id", "currency"]).passed
    bad = checks.not_null(_silver(currency=["USD", None, None]), ["transaction_id", "currency"])
    assert not bad.passed and bad.detail == "currency: 2 nulls"


@pytest.mark.unit
def test_ranges_count_rows_outside_their_bounds() -> None:
    bounds: dict[str, tuple[float | None, float | None]] = {"amount_cents": (1, None), "event_hour": (0, 23)}
    assert checks.in_range(_silver(), bounds).passed
    bad = checks.in_range(_silver(amount_cents=[0, -5, 3], event_hour=[24, 1, 2]), bounds)
    assert not bad.passed and bad.observed == "3"


@pytest.mark.unit
def test_uniqueness_counts_duplicates() -> None:
    assert checks.unique(_silver(), "transaction_id").passed
    bad = checks.unique(_silver(transaction_id=["a", "a", "b"]), "transaction_id")
    assert not bad.passed and bad.observed == "1 duplicates"


@pytest.mark.unit
def test_references_to_the_reference_codes() -> None:
    assert "USD" in ALLOWED_CODES["currency"]
    subset = {k: ALLOWED_CODES[k] for k in ("currency", "merchant_category")}
    assert checks.references(_silver(), subset).passed
    bad = checks.references(_silver(currency=["USD", "XXX", "ZZZ"]), subset)
    assert not bad.passed and "currency: unknown XXX, ZZZ" in bad.detail


@pytest.mark.unit
def test_generator_vocabulary_is_covered_by_the_reference_codes() -> None:
    """Every code the generator emits must pass the audit, or the publish gate would block healthy data."""
    from shoplake.ingestion import vocab

    allowed = ALLOWED_CODES
    assert set(vocab.CURRENCIES) <= allowed["currency"]
    assert set(vocab.COUNTRIES) <= allowed["merchant_country"]
    assert set(vocab.CATEGORIES) <= allowed["merchant_category"]
    assert set(vocab.PAYMENT_METHODS) <= allowed["payment_method"]


@pytest.mark.unit
def test_volumes_layer_by_layer() -> None:
    assert checks.volume_bronze_vs_kafka(1000, 1000, 0.01).passed
    assert not checks.volume_bronze_vs_kafka(900, 1000, 0.01).passed
    assert not checks.volume_bronze_vs_kafka(1000, None, 0.01).passed
    assert checks.volume_silver_vs_bronze(90, 100, 5).passed  # 5 duplicates dropped
    assert not checks.volume_silver_vs_bronze(96, 100, 5).passed  # more rows than bronze had
    assert not checks.volume_silver_vs_bronze(0, 100, 5).passed  # everything vanished
    assert checks.volume_silver_vs_bronze(0, 5, 5).passed  # everything was poison: quarantined
    assert checks.volume_raw_vs_silver(995, 1000, 0.01).passed
    assert not checks.volume_raw_vs_silver(900, 1000, 0.01).passed
    assert not checks.volume_raw_vs_silver(None, 1000, 0.01).passed


@pytest.mark.unit
def test_missing_silver_blocks_publishing_and_alerts(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from shoplake.config import Settings
    from shoplake.monitoring.notify import read_outbox
    from shoplake.pipeline.config import load_streaming_config

    settings = Settings.from_env(
        {
            "SHOPLAKE_HOME": str(tmp_path / "home"),
            "DELTA_BASE_PATH": str(tmp_path / "lake"),
            "ALERT_DRY_RUN": "true",
            "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
        }
    )
    with pytest.raises(DataQualityError, match="silver table missing"):
        publish_gate(settings, load_streaming_config(settings), datetime.now(UTC), caller="unit")
    assert "silver table missing" in str(read_outbox(settings)[-1])
