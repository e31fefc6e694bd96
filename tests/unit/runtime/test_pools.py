"""The fair-scheduler pools: every streaming stage has one, the medallion goes first, and Spark reads them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from shoplake.config import get_settings
from shoplake.runtime.jobs import STARTERS
from shoplake.runtime.session import POOL_WEIGHTS, fair_pools_xml, spark_session

pytestmark = pytest.mark.unit


def test_every_stage_has_a_pool_and_the_latency_critical_query_outweighs_gold() -> None:
    assert set(STARTERS) <= set(POOL_WEIGHTS)
    assert POOL_WEIGHTS["medallion"] > POOL_WEIGHTS["scorer"] > POOL_WEIGHTS["gold"]
    pools = {p.get("name"): p for p in ET.fromstring(fair_pools_xml()).iter("pool")}
    assert set(pools) == set(POOL_WEIGHTS)
    assert pools["medallion"].findtext("minShare") == "2" and pools["gold"].findtext("minShare") == "0"


def test_the_session_schedules_with_those_pools() -> None:
    spark = spark_session(get_settings(), app_name="shoplake-unit", shuffle_partitions=1)
    scheduler = spark.sparkContext._jsc.sc()

    medallion = scheduler.getPoolForName("medallion").get()
    gold = scheduler.getPoolForName("gold").get()

    assert (medallion.weight(), medallion.minShare()) == (POOL_WEIGHTS["medallion"], 2)
    assert (gold.weight(), gold.minShare()) == (POOL_WEIGHTS["gold"], 0)
