"""What happens to rows: Kafka -> bronze -> silver -> gold, and the PostgreSQL sink.

Transforms are pure ``DataFrame -> DataFrame`` functions; each ``foreachBatch`` body here says what one
micro-batch writes where. Delta mechanics live in :mod:`shoplake.lakehouse`, the Spark session, the queries
and the continuous service in :mod:`shoplake.runtime`.
"""
