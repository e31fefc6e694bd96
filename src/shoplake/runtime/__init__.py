"""Running the pipeline: the Spark session and its JVM, the queries and their two modes, the continuous
service, its housekeeping, and per-batch progress and phase metrics."""
