"""Every mart keeps its declared grain when one warehouse holds several worlds and a backfill.

Three generator worlds share merchant and customer ids with different attributes (category, country), as a
re-categorised merchant or a second data source would; the third covers older days too (a backfill). dbt's
own unique tests run in the build, and each mart's key is also counted here, independently of them.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from shoplake import stack as local_stack
from shoplake.config import Settings, get_settings
from shoplake.warehouse import dbt_runner, raw_loader

pytestmark = pytest.mark.integration

TEST_DB = "shoplake_worlds_it"
N = 6_000
# mart -> its declared unique key (dbt/models/marts/_marts__models.yml)
GRAIN = {
    "fct_transactions": ("transaction_id",),
    "dim_customers": ("customer_id",),
    "dim_merchants": ("merchant_id",),
    "customer_lifetime_metrics": ("customer_id",),
    "agg_daily_revenue": ("revenue_date", "merchant_category", "merchant_country_code"),
    "agg_hourly_revenue": ("revenue_hour", "merchant_category", "merchant_country_code"),
    "agg_daily_merchant_fraud": ("fraud_date", "merchant_id"),
}


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    base = get_settings()
    local_stack.up(base, ["postgres"])
    with psycopg.connect(base.postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(TEST_DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(TEST_DB)))
    yield base.with_env(POSTGRES_DB=TEST_DB)


def test_three_worlds_and_a_backfill_keep_every_marts_grain(settings: Settings) -> None:
    raw_loader.load(settings, N, "worlds-7", seed=7)
    raw_loader.load(settings, N, "worlds-8", seed=8, first_offset=N)
    first = dbt_runner.build(settings, dbt_runner.BuildOptions(docs=False))
    raw_loader.load(settings, N, "worlds-9", seed=9, first_offset=2 * N, days=40.0)  # older days too
    again = dbt_runner.build(settings, dbt_runner.BuildOptions(docs=False))  # incremental, as a later run
    for results in (first, again):
        assert [r.failure_report() for r in results if not r.success] == []
        assert results[-1].step == "test" and results[-1].counts().get("pass", 0) > 0
    with psycopg.connect(settings.postgres.dsn()) as conn:
        merchants_with_two_categories = conn.execute(
            "select count(*) from (select merchant_id from raw.transactions group by merchant_id "
            "having count(distinct merchant_category) > 1) as m"
        ).fetchone()
        assert merchants_with_two_categories is not None and merchants_with_two_categories[0] > 0
        for mart, key in GRAIN.items():
            columns = sql.SQL(", ").join(map(sql.Identifier, key))
            row = conn.execute(
                sql.SQL("select count(*), count(distinct ({})) from marts.{}").format(columns, sql.Identifier(mart))
            ).fetchone()
            assert row is not None and row[0] == row[1] > 0, f"{mart}: {row[0]} rows, {row[1]} distinct {key}"
        (facts,) = conn.execute("select count(*) from marts.fct_transactions").fetchone() or (0,)
        assert facts == 3 * N
