"""Data contracts: versioned Avro schemas and the Confluent wire-format codec."""
