"""The medallion's Delta tables, created empty before any query reads them, with the exact schemas.

Readers (gold, the scorer) can start before the first batch lands, and the
schemas come from the transforms themselves, run on an empty frame, so a table never disagrees with what the
batches write.
"""

from __future__ import annotations

from typing import Any, Final

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from shoplake.contracts.schemas import schema_dict
from shoplake.streaming import table_properties
from shoplake.streaming.config import StreamingConfig
from shoplake.streaming.decode import Decoder, StaticSchemas
from shoplake.streaming.enrich import ReferenceData, enrich
from shoplake.streaming.transforms import BRONZE_SCHEMA, decode_frames, quarantine_rows, silver_rows, validate

# Bronze columns neither silver nor quarantine keep: not decoded, not cached.
UNUSED_BRONZE: Final = ("headers", "kafka_timestamp_type")


def ensure_silver_table(spark: SparkSession, cfg: StreamingConfig) -> None:
    """Create the empty silver table (so readers can start before the first batch) with the exact schema.

    New and existing tables get the per-append cost properties (:mod:`.table_properties`).
    """
    if not DeltaTable.isDeltaTable(spark, str(cfg.silver_path)):
        empty = spark.createDataFrame([], _silver_schema(spark))
        empty.write.format("delta").mode("ignore").partitionBy("event_date").save(str(cfg.silver_path))
    table_properties.apply(str(cfg.silver_path), table_properties.SILVER)


def ensure_quarantine_table(spark: SparkSession, cfg: StreamingConfig) -> None:
    """Create the empty quarantine table: batches without rejects do not write it, but readers expect it."""
    if DeltaTable.isDeltaTable(spark, str(cfg.quarantine_path)):
        return
    empty = spark.createDataFrame([], quarantine_rows(_checked_empty(spark)).schema)
    empty.write.format("delta").mode("ignore").save(str(cfg.quarantine_path))


def _checked_empty(spark: SparkSession) -> DataFrame:
    """The transforms run on an empty bronze frame: the one source of truth for the tables' schemas."""
    bronze = spark.createDataFrame([], BRONZE_SCHEMA).drop(*UNUSED_BRONZE)
    return validate(decode_frames(bronze, Decoder(schema_dict(), StaticSchemas({}))))


def _silver_schema(spark: SparkSession) -> Any:
    return enrich(silver_rows(_checked_empty(spark)), ReferenceData({}, {}, {})).schema


def ensure_bronze_table(spark: SparkSession, cfg: StreamingConfig) -> None:
    """Create the empty bronze table, so the silver query can start before the first Kafka batch lands.

    New and existing tables get the per-append cost properties (:mod:`.table_properties`).
    """
    if not DeltaTable.isDeltaTable(spark, str(cfg.bronze_path)):
        empty = spark.createDataFrame([], BRONZE_SCHEMA)
        empty.write.format("delta").mode("ignore").partitionBy("event_date").save(str(cfg.bronze_path))
    table_properties.apply(str(cfg.bronze_path), table_properties.BRONZE)
