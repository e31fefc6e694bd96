"""Silver with deletion vectors: the dedup falls back to Spark and re-sent records still land once.

The medallion's dedup reads silver's ids from parquet with delta-rs (:mod:`shoplake.pipeline.silver.dedup`),
which cannot see rows hidden by deletion vectors. An operator who enables them (e.g. to erase a customer's
rows with ``DELETE``) must not get duplicates or lose re-sent records: the batch falls back to a Spark read
of silver's ids, which honours the vectors.
"""

from __future__ import annotations

import logging

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from shoplake.runtime.jobs import run_catch_up
from tests.integration.test_streaming_medallion import (  # noqa: F401 - fixtures are used by name
    Lane,
    lane,
    make_record,
    produce_records,
    silver_records,
    spark,
    warehouse_records,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_re_sent_records_land_once_when_silver_has_deletion_vectors(
    spark: SparkSession,  # noqa: F811 - the imported fixtures
    lane: Lane,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [make_record(i) for i in range(120)]
    produce_records(lane, records)
    run_catch_up(spark, lane.cfg)
    silver = str(lane.cfg.silver_path)
    spark.sql(f"ALTER TABLE delta.`{silver}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    DeltaTable.forPath(spark, silver).delete("transaction_id = 'it-00000007'")
    assert silver_records(spark, lane.cfg) == [r for r in records if r["transaction_id"] != "it-00000007"]

    # Everything re-sent plus ten new records: the erased record comes back (it was re-sent), nothing doubles.
    more = records + [make_record(i) for i in range(120, 130)]
    produce_records(lane, more)
    with caplog.at_level(logging.WARNING, logger="shoplake.pipeline.silver.refiner"):
        run_catch_up(spark, lane.cfg)
    assert any("falls back to a Spark" in r.getMessage() for r in caplog.records)
    assert silver_records(spark, lane.cfg) == more
    assert warehouse_records(lane.cfg) == more
