"""The medallion's Delta tables, created empty before any query reads them, with the exact schemas.

Readers (gold, the scorer) can start before the first batch lands, and the schemas come from the transforms
themselves, run on an empty frame (Spark's analysis, no job), so a table never disagrees with what the
batches write. The empty tables are written by delta-rs in one commit with their properties: a Spark write of
an empty table ran jobs that cost a cold catch-up's driver seconds per table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from shoplake.contracts.schemas import schema_dict
from shoplake.lakehouse import table_properties
from shoplake.pipeline.bronze import BRONZE_SCHEMA, UNUSED_BRONZE
from shoplake.pipeline.config import StreamingConfig
from shoplake.pipeline.silver.decode import Decoder, StaticSchemas
from shoplake.pipeline.silver.enrich import ReferenceData, enrich
from shoplake.pipeline.silver.transforms import decode_frames, quarantine_rows, silver_rows, validate


def create_empty(
    path: Path, schema: StructType, *, partition_by: tuple[str, ...] = (), properties: dict[str, str] | None = None
) -> None:
    """Create the table at ``path`` with no rows unless it exists (timestamps in UTC, as the session's)."""
    DeltaTable.create(
        str(path),
        to_arrow_schema(schema, timezone="UTC"),
        mode="ignore",
        partition_by=list(partition_by) or None,
        configuration=properties,
        raise_if_key_not_exists=False,  # the Parquet writer's keys (table_properties) are not Delta's own
    )


def ensure_silver_table(spark: SparkSession, cfg: StreamingConfig) -> None:
    """Create the empty silver table (so readers can start before the first batch) with the exact schema.

    New and existing tables get the per-append cost properties (:mod:`shoplake.lakehouse.table_properties`).
    """
    create_empty(
        cfg.silver_path, _silver_schema(spark), partition_by=("event_date",), properties=table_properties.SILVER
    )
    table_properties.apply(str(cfg.silver_path), table_properties.SILVER)


def ensure_quarantine_table(spark: SparkSession, cfg: StreamingConfig) -> None:
    """Create the empty quarantine table: batches without rejects do not write it, but readers expect it."""
    create_empty(cfg.quarantine_path, quarantine_rows(_checked_empty(spark)).schema)


def _checked_empty(spark: SparkSession) -> DataFrame:
    """The transforms run on an empty bronze frame: the one source of truth for the tables' schemas."""
    bronze = spark.createDataFrame([], BRONZE_SCHEMA).drop(*UNUSED_BRONZE)
    return validate(decode_frames(bronze, Decoder(schema_dict(), StaticSchemas({}))))


def _silver_schema(spark: SparkSession) -> Any:
    return enrich(silver_rows(_checked_empty(spark)), ReferenceData({}, {}, {})).schema


def ensure_bronze_table(spark: SparkSession, cfg: StreamingConfig) -> None:
    """Create the empty bronze table, so readers can start before the first Kafka batch lands.

    New and existing tables get the per-append cost properties (:mod:`shoplake.lakehouse.table_properties`).
    """
    create_empty(
        cfg.bronze_path,
        spark.createDataFrame([], BRONZE_SCHEMA).schema,
        partition_by=("event_date",),
        properties=table_properties.BRONZE,
    )
    table_properties.apply(str(cfg.bronze_path), table_properties.BRONZE)
