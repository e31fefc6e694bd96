"""Ingestion: the synthetic transaction world, its Avro encoding, and delivery to Kafka.

Entry points shared by the CLI (``shoplake ingest``) and the Airflow DAG ``data_ingestion_pipeline``:

* ``topics.check_kafka(settings)`` / ``contracts.registry.check_schema_registry(settings)`` - health checks
  with bounded timeouts (``run.check_health`` runs both);
* ``run.ingest(settings, num_transactions, seed, start, run_key, span=..., verify=...)`` - one run; its
  ``IngestResult.to_dict()`` is JSON (XCom-safe) and carries ``offsets_before`` and
  ``delivered_per_partition``;
* ``verify.verify_kafka_topic(settings, before, delivered)`` - the separate "verify topic" task, fed with
  those two mappings.
"""
