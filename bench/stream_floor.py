"""Spark's own floor for the streaming shape: the same Kafka source and triggers, two plain Delta appends.

The medallion's fixed cost per batch is judged against this (issue 27): a query that reads the lane's topic
exactly as the medallion does (``jobs.kafka_bronze``: same options, same ``minOffsetsPerTrigger`` /
``maxTriggerDelay`` in continuous mode) and writes each batch twice, to a "bronze" and a "silver" Delta table,
with no decode, validation, deduplication, PostgreSQL load or gold. Any pipeline that lands bronze and silver
per batch on Spark and Delta pays at least this.

Run as its own process, so its CPU can be measured like the service's:
``python -m bench.stream_floor --root DIR --mode catch-up|continuous`` with ``STREAMING_CONFIG`` pointing at the
lane's config (its topic, trigger and offsets settings). ``catch-up`` runs ``availableNow`` and exits;
``continuous`` runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from shoplake.config import get_settings
from shoplake.pipeline.config import load_streaming_config
from shoplake.runtime.jobs import CATCH_UP, CONTINUOUS, kafka_bronze
from shoplake.runtime.session import spark_session


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="folder for the floor's tables and checkpoint")
    parser.add_argument("--mode", choices=(CATCH_UP, CONTINUOUS), required=True)
    args = parser.parse_args()
    settings = get_settings()
    cfg = load_streaming_config(settings)
    spark = spark_session(
        settings,
        app_name="shoplake-stream-floor",
        shuffle_partitions=cfg.shuffle_partitions,
        driver_memory=cfg.driver_memory,
        long_running=args.mode == CONTINUOUS,
    )

    def append_twice(batch: Any, _batch_id: int) -> None:
        for table in ("bronze", "silver"):
            batch.write.format("delta").mode("append").save(str(args.root / table))

    writer = (
        kafka_bronze(spark, cfg, args.mode)
        .writeStream.queryName("floor")
        .option("checkpointLocation", str(args.root / "checkpoint"))
        .foreachBatch(append_twice)
    )
    if args.mode == CATCH_UP:
        writer.trigger(availableNow=True).start().awaitTermination()
        spark.stop()
        return 0
    query = writer.trigger(processingTime=cfg.triggers["medallion"]).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    while not stopped.wait(1.0):
        if not query.isActive:
            print(f"floor query stopped: {query.exception()}", file=sys.stderr)
            return 1
    query.stop()
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
