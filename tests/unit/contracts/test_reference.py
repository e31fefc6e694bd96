"""One source for the reference codes: dbt's seeds, silver's validation and the generator all agree with it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from shoplake.contracts import reference
from shoplake.ingestion import vocab
from shoplake.ingestion.generator import generate

pytestmark = pytest.mark.unit

SEEDS = Path(__file__).resolve().parents[3] / "dbt" / "seeds"


@pytest.mark.parametrize("name", sorted(reference.SEEDS))
def test_each_dbt_seed_is_what_the_reference_module_generates(name: str) -> None:
    assert (SEEDS / name).read_text(encoding="utf-8") == reference.seed_text(name), (
        f"dbt/seeds/{name} differs from shoplake.contracts.reference: edit the module, then run"
        " `python -m shoplake.contracts.reference` to rewrite the seeds"
    )


def test_write_seeds_rewrites_only_what_differs(tmp_path: Path) -> None:
    assert sorted(p.name for p in reference.write_seeds(tmp_path)) == sorted(reference.SEEDS)
    (tmp_path / "countries.csv").write_text("country_code\nXX\n")
    assert [p.name for p in reference.write_seeds(tmp_path)] == ["countries.csv"]
    assert reference.write_seeds(tmp_path) == []


def test_the_generator_emits_only_reference_codes_and_uses_them_all() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    world = pd.concat([b.to_pandas() for b in generate(20_000, 3, start, "reference")], ignore_index=True)
    assert set(world["payment_method"]) == set(reference.PAYMENT_METHOD_CODES)
    assert set(world["merchant_category"]) == set(reference.CATEGORY_CODES)
    assert set(world["currency"]) == set(reference.CURRENCY_CODES)
    assert set(world["merchant_country"]) | set(world["ip_country"]) <= set(reference.COUNTRY_CODES)


def test_the_generator_refuses_a_reference_code_it_has_no_weight_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vocab, "PAYMENT_METHODS", (*vocab.PAYMENT_METHODS, "crypto"))
    with pytest.raises(ValueError, match=r"payment methods \['crypto'\]"):
        vocab._check_against_reference()


def _accepted_values(node: object) -> Iterator[tuple[str, list[object]]]:
    """(column, values) of every ``accepted_values`` test in a dbt properties document."""
    if isinstance(node, dict):
        for test in node.get("data_tests", []) if "name" in node else []:
            if isinstance(test, dict) and "accepted_values" in test:
                yield node["name"], test["accepted_values"]["arguments"]["values"]
        for value in node.values():
            yield from _accepted_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _accepted_values(item)


EXPECTED_VALUES: dict[str, set[object]] = {
    "channel": set(reference.CHANNELS),
    "preferred_channel": set(reference.CHANNELS),
    "device_type": set(reference.DEVICE_TYPES),
    "payment_status": set(reference.STATUSES),
    "fraud_pattern": {p for p in vocab.FRAUD_PATTERNS if p is not None},
    "category_group": {c.category_group for c in reference.MERCHANT_CATEGORIES},
    "region": {c.region for c in reference.COUNTRIES},
    "risk_tier": {c.risk_tier for c in reference.COUNTRIES},
    "payment_method_type": {p.payment_method_type for p in reference.PAYMENT_METHODS},
    "minor_unit_digits": {c.minor_unit_digits for c in reference.CURRENCIES},
}


def test_dbt_accepted_values_are_the_reference_vocabularies() -> None:
    found = [
        (path.name, column, values)
        for path in sorted((SEEDS.parent).glob("**/_*.yml"))
        for column, values in _accepted_values(yaml.safe_load(path.read_text()))
    ]
    assert {column for _, column, _ in found} == set(EXPECTED_VALUES)
    for name, column, values in found:
        assert set(values) == EXPECTED_VALUES[column], f"{name}: {column}"
