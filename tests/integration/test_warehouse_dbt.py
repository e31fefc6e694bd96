"""The dbt warehouse against a real PostgreSQL: build, reconciliation, idempotence, incrementality, bad rows.

raw.transactions is filled by the streaming sink's own upsert with rows from the ingestion generator
(tests/integration/raw_loader.py). Everything runs in a dedicated database so a developer's warehouse is
never touched; PostgreSQL itself is the stack's (started if needed, stopped only if this module started it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shoplake import stack as local_stack
from shoplake.config import Settings, get_settings
from shoplake.warehouse import dbt_runner, raw_loader

pytestmark = pytest.mark.integration

TEST_DB = "shoplake_dbt_it"
HISTORY = 20_000
TOPUP = 2_000
MARTS = (
    "fct_transactions",
    "dim_customers",
    "dim_merchants",
    "customer_lifetime_metrics",
    "agg_daily_revenue",
    "agg_hourly_revenue",
    "agg_daily_merchant_fraud",
)
# Run bookkeeping that legitimately differs between two builds of the same data.
VOLATILE_COLUMNS = frozenset({"built_at", "last_built_at", "raw_read_at"})


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    base = get_settings()
    already_up = any(row.name == "postgres" and row.healthy for row in local_stack.status(base))
    local_stack.up(base, ["postgres"])
    with psycopg.connect(base.postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(TEST_DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(TEST_DB)))
    yield base.with_env(POSTGRES_DB=TEST_DB)
    if not already_up:
        local_stack.down(base, ["postgres"])


@pytest.fixture(scope="module")
def loaded(settings: Settings) -> raw_loader.LoadedRows:
    return raw_loader.load(settings, HISTORY, "dbt-it-history")


@pytest.fixture(scope="module")
def first_build(settings: Settings, loaded: raw_loader.LoadedRows) -> list[dbt_runner.StepResult]:
    return dbt_runner.build(settings)


def query(settings: Settings, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.postgres.dsn()) as conn:
        return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]


def execute(settings: Settings, *statements: str) -> None:
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def fingerprint(settings: Settings) -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every row (bookkeeping columns excluded) of each mart."""
    out = {}
    for mart in MARTS:
        columns = [
            name
            for (name,) in query(
                settings,
                "select column_name from information_schema.columns where table_schema = 'marts' "
                "and table_name = %s order by ordinal_position",
                (mart,),
            )
            if name not in VOLATILE_COLUMNS
        ]
        row = ", ".join(f'"{c}"' for c in columns)
        ((count, digest),) = query(
            settings,
            f"select count(*), md5(coalesce(string_agg(r::text, '|' order by r::text), '')) "
            f"from (select row({row}) as r from marts.{mart}) as rows",
        )
        out[mart] = (count, digest)
    return out


def eur(cents: int, rate: Decimal) -> Decimal:
    return (Decimal(cents) / 100 * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def expected_revenue(settings: Settings, loaded: raw_loader.LoadedRows) -> Decimal:
    """Approved revenue in EUR computed in Python from the seed file, independently of dbt."""
    rates: dict[str, Decimal] = {}
    seed_file = settings.project_dir / "dbt" / "seeds" / "currency_rates.csv"
    header, *lines = seed_file.read_text().splitlines()
    names = header.split(",")
    for line in lines:
        values = dict(zip(names, line.split(","), strict=True))
        rates[values["currency_code"]] = Decimal(values["rate_to_eur"])
    return sum(
        (eur(c, rates[cur]) for cur, cents in loaded.by_currency_approved_cents.items() for c in cents),
        Decimal(0),
    )


def test_build_runs_every_step_and_every_test_passes(
    settings: Settings, first_build: list[dbt_runner.StepResult]
) -> None:
    assert [r.step for r in first_build] == [
        "check_connection", "deps", "seed", "run_staging", "run_marts", "test", "docs_generate",
    ]  # fmt: skip
    assert all(r.success for r in first_build)
    tests = next(r for r in first_build if r.step == "test")
    kinds = {n.resource_type for n in tests.nodes}
    assert kinds == {"test", "unit_test"}
    manifest = json.loads((settings.home / "dbt" / "target" / "manifest.json").read_text())
    declared = sum(1 for n in manifest["nodes"].values() if n["resource_type"] == "test") + len(manifest["unit_tests"])
    assert len(tests.nodes) == declared > 90  # every declared data and unit test ran...
    assert tests.counts() == {"pass": declared}  # ...and passed
    marts = next(r for r in first_build if r.step == "run_marts")
    assert sorted(n.name for n in marts.nodes) == sorted(MARTS)
    assert (settings.home / "dbt" / "target" / "index.html").is_file()
    assert (settings.home / "dbt" / "target" / "catalog.json").is_file()


def test_marts_reconcile_with_the_loaded_rows(
    settings: Settings, loaded: raw_loader.LoadedRows, first_build: list[dbt_runner.StepResult]
) -> None:
    ((fct_count, fct_cents, fct_fraud),) = query(
        settings, "select count(*), sum(amount_minor), count(*) filter (where is_fraud) from marts.fct_transactions"
    )
    assert (fct_count, fct_cents, fct_fraud) == (loaded.count, loaded.amount_cents, loaded.fraud)
    revenue = expected_revenue(settings, loaded)
    for mart, count_column, revenue_column in (
        ("agg_daily_revenue", "transaction_count", "revenue"),
        ("agg_hourly_revenue", "transaction_count", "revenue"),
        ("customer_lifetime_metrics", "transaction_count", "lifetime_revenue"),
    ):
        ((count, total),) = query(settings, f"select sum({count_column}), sum({revenue_column}) from marts.{mart}")
        assert (mart, count, total) == (mart, loaded.count, revenue)
    ((fraud,),) = query(settings, "select sum(fraud_count) from marts.agg_daily_merchant_fraud")
    assert fraud == loaded.fraud
    ((customers,),) = query(settings, "select count(*) from marts.dim_customers")
    ((merchants,),) = query(settings, "select count(*) from marts.dim_merchants")
    assert (customers, merchants) == (len(loaded.customers), len(loaded.merchants))


def test_rebuilding_changes_nothing(settings: Settings, first_build: list[dbt_runner.StepResult]) -> None:
    before = fingerprint(settings)
    dbt_runner.build(settings, dbt_runner.BuildOptions(docs=False))
    assert fingerprint(settings) == before


def test_incremental_top_up_equals_a_full_rebuild(
    settings: Settings, loaded: raw_loader.LoadedRows, first_build: list[dbt_runner.StepResult]
) -> None:
    topup = raw_loader.load(settings, TOPUP, "dbt-it-topup", first_offset=HISTORY, days=2.0)
    results = dbt_runner.build(settings, dbt_runner.BuildOptions(docs=False))
    assert all(r.success for r in results)
    ((count, cents),) = query(settings, "select count(*), sum(amount_minor) from marts.fct_transactions")
    assert (count, cents) == (loaded.count + topup.count, loaded.amount_cents + topup.amount_cents)
    incremental = fingerprint(settings)
    dbt_runner.build(settings, dbt_runner.BuildOptions(full_refresh=True, docs=False))
    assert fingerprint(settings) == incremental


def _copy_of_a_row(settings: Settings, new_id: str, **overrides: str) -> None:
    (columns,) = query(
        settings,
        "select string_agg(quote_ident(column_name), ', ' order by ordinal_position) "
        "from information_schema.columns where table_schema = 'raw' and table_name = 'transactions'",
    )
    select_list = ", ".join(
        overrides.get(c.strip('"'), c) if c.strip('"') != "transaction_id" else f"'{new_id}'"
        for c in str(columns[0]).split(", ")
    )
    execute(
        settings,
        f"insert into raw.transactions ({columns[0]}) "
        f"select {select_list} from raw.transactions order by transaction_id limit 1",
    )


# bad row -> (the dbt test that must fail, how its failure describes what it checks)
BAD_ROWS = {
    "negative_amount": (
        "is_positive_stg_raw__transactions_amount_minor",
        "is_positive on stg_raw__transactions.amount_minor",
    ),
    "future_timestamp": (
        "not_in_future_stg_raw__transactions_transacted_at",
        "not_in_future on stg_raw__transactions.transacted_at",
    ),
    "duplicate_id": ("source_unique_raw_transactions_transaction_id", "unique on raw.transactions.transaction_id"),
}


@pytest.mark.parametrize("bad_row", sorted(BAD_ROWS))
def test_a_bad_raw_row_fails_exactly_the_test_that_guards_against_it(
    settings: Settings, first_build: list[dbt_runner.StepResult], bad_row: str
) -> None:
    failing_test, subject = BAD_ROWS[bad_row]
    bad_id = f"tx-bad-{bad_row}"
    try:
        if bad_row == "negative_amount":
            _copy_of_a_row(settings, bad_id, amount_cents="-500", amount="-5.000")
        elif bad_row == "future_timestamp":
            # one minute past the bound silver applies too ([silver] max_clock_skew_minutes)
            skew = settings.streaming.silver.max_clock_skew_minutes
            _copy_of_a_row(settings, bad_id, event_time=f"now() + interval '{skew + 1} minutes'")
        else:
            # raw's primary key makes a duplicate impossible through the sink; drop it to simulate an
            # append-only loader and prove the source test would catch one.
            execute(settings, "alter table raw.transactions drop constraint transactions_pkey")
            (first_id,) = query(settings, "select min(transaction_id) from raw.transactions")[0]
            bad_id = str(first_id)
            execute(
                settings,
                f"insert into raw.transactions select * from raw.transactions where transaction_id = '{bad_id}'",
            )
        with pytest.raises(dbt_runner.DbtStepError) as failure:
            dbt_runner.run_tests(settings)
    finally:
        if bad_row == "duplicate_id":
            execute(
                settings,
                "delete from raw.transactions a using raw.transactions b "
                "where a.transaction_id = b.transaction_id and a.ctid > b.ctid",
                "alter table raw.transactions add primary key (transaction_id)",
            )
        else:
            execute(settings, f"delete from raw.transactions where transaction_id = '{bad_id}'")
    result = failure.value.result
    assert [n.name for n in result.failures] == [failing_test]
    message = str(failure.value)
    assert f"({subject}): FAIL - " in message
    assert bad_id in message  # the sample of failing rows names the offending record
    # every other test still passed: the failure is attributed, not a cascade
    assert result.counts() == {"pass": len(result.nodes) - 1, "fail": 1}


def test_source_freshness_passes_after_a_load_and_errors_when_raw_goes_stale(
    settings: Settings, first_build: list[dbt_runner.StepResult]
) -> None:
    assert dbt_runner.source_freshness(settings).success
    execute(settings, "update raw.transactions set loaded_at = now() - interval '30 hours'")
    with pytest.raises(dbt_runner.DbtStepError) as failure:
        dbt_runner.source_freshness(settings)
    (node,) = failure.value.result.failures
    assert node.unique_id == "source.shoplake.raw.transactions"
    assert node.status in {"error", "runtime error"}
