"""The register bitmap gives exactly Spark's ``approx_count_distinct`` while it can, and says when it cannot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as sf

from shoplake.config import get_settings
from shoplake.streaming import hll_bitmap
from shoplake.streaming.session import spark_session

pytestmark = pytest.mark.unit

# Distinct values per group, each value sent twice, plus a NULL per group: from an empty group up to groups
# whose registers cannot all be told apart (~635 distinct values occupy more than 364 of the 512).
SIZES = (0, 1, 2, 3, 7, 20, 60, 150, 250, 330, 380, 420, 500, 700, 1000, 1500)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield spark_session(get_settings(), app_name="shoplake-unit", shuffle_partitions=1)


def _estimates(values: DataFrame, group: str) -> list[Row]:
    """Per ``group`` of ``values`` (columns ``v`` and its register ``r``): Spark's count, occupied registers, ours."""
    return (
        values.groupBy(group)
        .agg(sf.approx_count_distinct("v").alias("spark"), *hll_bitmap.register_bitmap("r", "v"))
        .select(group, "spark", hll_bitmap.occupied("v").alias("occupied"), hll_bitmap.estimate("v").alias("ours"))
        .orderBy(group)
        .collect()
    )


def test_estimate_is_approx_count_distinct_up_to_364_registers_and_null_above(spark: SparkSession) -> None:
    rows: list[tuple[int, str | None]] = [
        (g, f"dev-{g}-{i}") for g, size in enumerate(SIZES) for i in range(size) for _ in range(2)
    ]
    rows += [(g, None) for g in range(len(SIZES))]
    values = spark.createDataFrame(rows, "g int, v string").withColumn("r", hll_bitmap.register("v"))
    out = _estimates(values, "g")
    assert [r.g for r in out] == list(range(len(SIZES)))
    exact = [r for r in out if r.occupied <= hll_bitmap.MAX_EXACT_REGISTERS]
    assert [r.ours for r in exact] == [r.spark for r in exact]
    assert all(r.ours is None for r in out if r.occupied > hll_bitmap.MAX_EXACT_REGISTERS)
    # Both regimes are exercised, and values sharing a register (k < distinct values) are among the exact ones.
    assert exact and len(exact) < len(out)
    assert any(r.occupied < SIZES[r.g] for r in exact)
    assert out[0].ours == 0


def test_estimate_is_approx_count_distinct_for_every_register_count(spark: SparkSession) -> None:
    """Each k = 0..380 occupied registers: a group of k values that all fall in different registers."""
    candidates = spark.range(6_000).select(sf.concat(sf.lit("v"), sf.col("id").cast("string")).alias("v"), "id")
    firsts = (
        candidates.withColumn("r", hll_bitmap.register("v"))
        .groupBy("r")
        .agg(sf.min_by("v", "id").alias("v"), sf.min("id").alias("id"))
        .withColumn("rank", sf.row_number().over(Window.orderBy("id")))
    )
    groups = spark.range(0, 381).withColumnRenamed("id", "k")
    values = groups.join(firsts, firsts["rank"] <= groups["k"], "left").withColumn("r", hll_bitmap.register("v"))
    out = _estimates(values, "k")
    assert [(r.k, r.occupied) for r in out] == [(k, k) for k in range(381)]
    assert [r.ours for r in out[: hll_bitmap.MAX_EXACT_REGISTERS + 1]] == [
        r.spark for r in out[: hll_bitmap.MAX_EXACT_REGISTERS + 1]
    ]
    assert all(r.ours is None for r in out[hll_bitmap.MAX_EXACT_REGISTERS + 1 :])
