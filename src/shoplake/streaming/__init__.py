"""Spark Structured Streaming medallion: Kafka -> Delta bronze/silver/quarantine/gold -> PostgreSQL raw.*."""
