"""Ingestion: the synthetic transaction world, its Avro encoding, and delivery to Kafka."""
