"""Silver-shaped transactions straight from the generator, for ML benchmarks, tests and offline demos.

Training reads silver, which normally the streaming jobs fill from Kafka. Benchmarks of the model (and its
tests) must not depend on a broker and a streaming run, so this module produces the same columns and types
the silver table has - from the same generator the producer uses - as Arrow, ready for any Delta writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from shoplake.ingestion.generator import GeneratorConfig, TransactionBatch, generate


def batch_to_arrow(batch: TransactionBatch) -> pa.Table:
    """One generator batch with silver's column names and types (``event_time`` as UTC timestamp)."""
    cols = batch.to_columns()
    table = pa.table(cols)
    event_time = pc.cast(pa.array(batch.event_time_ms, pa.int64()), pa.timestamp("ms", tz="UTC"))
    table = table.set_column(
        table.schema.get_field_index("event_time"), "event_time", event_time.cast(pa.timestamp("us", tz="UTC"))
    )
    return table.append_column("event_date", pc.cast(event_time, pa.date32()))


def silver_batches(
    num_transactions: int,
    seed: int,
    start: datetime,
    *,
    span: timedelta | None = None,
    run_key: str = "ml-sample",
    config: GeneratorConfig | None = None,
) -> Iterator[pa.Table]:
    """Generator output as silver-shaped Arrow tables, chunk by chunk (memory stays bounded)."""
    for batch in generate(num_transactions, seed, start, run_key, span=span, config=config):
        yield batch_to_arrow(batch)


def write_silver_delta(path: Path, tables: Iterator[pa.Table]) -> int:
    """Write (overwrite) a Delta table at ``path`` partitioned by ``event_date``; returns the row count."""
    from deltalake import write_deltalake

    total = 0
    for table in tables:
        if total == 0:
            write_deltalake(str(path), table, partition_by=["event_date"], mode="overwrite")
        else:
            write_deltalake(str(path), table, partition_by=["event_date"], mode="append")
        total += table.num_rows
    return total
