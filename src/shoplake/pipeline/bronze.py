"""Kafka -> bronze: every record as it arrived, bytes and metadata, before anything is decoded."""

from __future__ import annotations

from typing import Final

from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

BRONZE_COLUMNS: Final = (
    "key",
    "value",
    "topic",
    "partition",
    "offset",
    "kafka_timestamp",
    "kafka_timestamp_type",
    "headers",
    "ingested_at",
    "event_date",
)
BRONZE_SCHEMA: Final = (
    "key binary, value binary, topic string, partition int, offset long, kafka_timestamp timestamp, "
    "kafka_timestamp_type int, headers array<struct<key:string,value:binary>>, ingested_at timestamp, "
    "event_date date"
)
# Bronze columns neither silver nor quarantine keep: not decoded, not cached.
UNUSED_BRONZE: Final = ("headers", "kafka_timestamp_type")


def bronze_projection(kafka: DataFrame) -> DataFrame:
    """Kafka source rows -> bronze: every byte and all metadata kept, plus ingestion time and a date.

    ``event_date`` (the partition column) is the UTC date of the Kafka record timestamp: bronze cannot look
    inside bytes it may not be able to decode, and the producer stamps records with their event time.
    """
    return kafka.select(
        sf.col("key"),
        sf.col("value"),
        sf.col("topic"),
        sf.col("partition"),
        sf.col("offset"),
        sf.col("timestamp").alias("kafka_timestamp"),
        sf.col("timestampType").alias("kafka_timestamp_type"),
        sf.col("headers"),
        sf.current_timestamp().alias("ingested_at"),
        sf.to_date(sf.col("timestamp")).alias("event_date"),
    )
