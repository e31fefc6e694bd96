"""Silver -> PostgreSQL ``raw.transactions``: idempotent keyed upsert, one micro-batch at a time.

dbt's sources must be complete and duplicate-free whatever happens to the stream, so a batch is COPYed
straight into the table only while its keys are all new (the primary key refuses anything else), and
otherwise into a temporary table and merged with ``INSERT .. ON CONFLICT (transaction_id) DO UPDATE``: a
replayed batch (after a crash, or a rewound checkpoint) rewrites identical rows, never adds any. COPY in
CSV produced by Arrow keeps the load at native speed; identifiers go through ``psycopg.sql``, values only
through COPY, never through string formatting.

A PostgreSQL restart during a batch is retried (:mod:`shoplake.retry`: connection errors only, bounded,
logged): the whole COPY + merge is one transaction, so an interrupted attempt leaves nothing behind and the
retry writes the batch exactly once. Only when the database stays down does the batch - and with it the
streaming query - fail, and the next run replays it from the checkpoint.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from shoplake.retry import is_postgres_connection_error, retry_transient

KEY: Final = "transaction_id"

# Column -> PostgreSQL type of raw.transactions, in silver column order.
COLUMN_TYPES: Final[dict[str, str]] = {
    "transaction_id": "text NOT NULL",
    "event_time": "timestamptz NOT NULL",
    "event_date": "date NOT NULL",
    "event_hour": "smallint NOT NULL",
    "customer_id": "text NOT NULL",
    "merchant_id": "text NOT NULL",
    "merchant_category": "text NOT NULL",
    "merchant_country": "char(2) NOT NULL",
    "amount_cents": "bigint NOT NULL",
    "amount": "numeric(18,3) NOT NULL",
    "currency": "char(3) NOT NULL",
    "payment_method": "text NOT NULL",
    "channel": "text NOT NULL",
    "device_id": "text NOT NULL",
    "device_type": "text NOT NULL",
    "ip_address": "text NOT NULL",
    "ip_country": "char(2) NOT NULL",
    "status": "text NOT NULL",
    "is_fraud": "boolean NOT NULL",
    "fraud_pattern": "text",
    "schema_id": "integer NOT NULL",
    "kafka_topic": "text NOT NULL",
    "kafka_partition": "integer NOT NULL",
    "kafka_offset": "bigint NOT NULL",
    "kafka_timestamp": "timestamptz NOT NULL",
    "ingested_at": "timestamptz NOT NULL",
}


@dataclass(frozen=True)
class WarehouseTable:
    """Where silver lands in PostgreSQL."""

    dsn: str
    schema: str
    table: str

    @property
    def ident(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.table)


def ensure_table(target: WarehouseTable) -> None:
    """Create the schema and table if missing (idempotent; safe to call at every job start)."""
    retry_transient(
        lambda: _ensure_table(target),
        what=f"creating {target.schema}.{target.table}",
        is_transient=is_postgres_connection_error,
    )


def _ensure_table(target: WarehouseTable) -> None:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in COLUMN_TYPES.items()
    )
    with psycopg.connect(target.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(target.schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ({}, loaded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY ({}))"
            ).format(target.ident, columns, sql.Identifier(KEY))
        )
        # dbt's incremental marts and source freshness filter on loaded_at: without an index each is a full scan.
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (loaded_at)").format(
                sql.Identifier(f"{target.table}_loaded_at_idx"), target.ident
            )
        )
        conn.execute(
            sql.SQL("COMMENT ON COLUMN {}.loaded_at IS {}").format(
                target.ident, sql.Literal("when the streaming sink last wrote the row (dbt source freshness)")
            )
        )


def _csv_bytes(batch: pa.RecordBatch | pa.Table) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
    return buf.getvalue()


def upsert(target: WarehouseTable, rows: pa.Table, columns: Sequence[str] = tuple(COLUMN_TYPES)) -> int:
    """Upsert ``rows`` (silver columns) keyed on ``transaction_id``; returns the rows inserted or changed.

    Unchanged rows are left alone (``IS DISTINCT FROM``), so a replay does not even bump ``loaded_at``.
    A dropped connection is retried with backoff (the transaction rolled back, so the retry is exact).
    """
    return upsert_batches(target, rows.to_batches(), columns).changed


@dataclass(frozen=True)
class Upserted:
    """What one upsert did: rows it was given, rows inserted or changed."""

    rows: int
    changed: int


def upsert_batches(
    target: WarehouseTable, batches: Iterable[pa.RecordBatch], columns: Sequence[str] = tuple(COLUMN_TYPES)
) -> Upserted:
    """:func:`upsert` for a stream of Arrow batches (one Spark partition): one transaction for all of them.

    Each batch is turned into CSV as it arrives, so the Arrow data is never held whole; the CSV is kept
    until the commit because a retry after a dropped connection must send it again. An exception from
    ``batches`` raises before PostgreSQL is touched: nothing of a half-read partition is ever loaded.
    """
    chunks: list[bytes] = []
    rows = 0
    for batch in batches:
        missing = [c for c in columns if c not in batch.schema.names]
        if missing:
            raise ValueError(f"rows lack warehouse columns {missing}")
        if batch.num_rows:
            chunks.append(_csv_bytes(batch.select(list(columns))))
            rows += batch.num_rows
    if rows == 0:
        return Upserted(0, 0)
    changed = retry_transient(
        lambda: _merge(target, chunks, columns),
        what=f"upserting {rows} rows into {target.schema}.{target.table}",
        is_transient=is_postgres_connection_error,
    )
    return Upserted(rows, changed)


# The result schema of :func:`partition_loader`'s function (one row per Spark partition); ``mapInArrow`` gets
# it converted to Spark's types, so the two cannot drift apart.
LOADED_SCHEMA: Final = pa.schema([("rows", pa.int64()), ("changed", pa.int64())])


def partition_loader(
    target: WarehouseTable, columns: Sequence[str] = tuple(COLUMN_TYPES)
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function that upserts each Spark partition where it is computed (an executor).

    Nothing passes through the driver, so its memory does not grow with the micro-batch; one transaction per
    partition is exact because the upsert is keyed and idempotent (a partition loaded before a failure is
    loaded again, identically, by the retried task or the replayed batch). The executors connect to
    PostgreSQL themselves, like Spark's JDBC writer: on a cluster they need network access to it.
    """

    def load(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        done = upsert_batches(target, batches, columns)
        yield pa.RecordBatch.from_pydict({"rows": [done.rows], "changed": [done.changed]}, schema=LOADED_SCHEMA)

    return load


def _merge(target: WarehouseTable, chunks: Sequence[bytes], columns: Sequence[str]) -> int:
    """Load ``chunks`` (CSV of ``columns``) in one transaction: COPY straight into the table, else merge.

    A batch of ids the table lacks (every first load) is COPYed into the table itself: PostgreSQL parses
    each row once and skips the temporary table and the ``INSERT .. SELECT``, so the load costs the server
    markedly less CPU.
    A key the table holds already, or one repeated in the batch, fails that COPY with a unique violation,
    which rolls all of it back; the keyed merge (:func:`_stage_and_merge`) then loads the batch in a new
    transaction - a replay, a re-sent record, a partition loaded before a crash.
    """
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    with psycopg.connect(target.dsn) as conn, conn.cursor() as cur:
        try:
            with conn.transaction():
                _copy(cur, sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target.ident, cols), chunks)
            changed = cur.rowcount
        except psycopg.errors.UniqueViolation:
            changed = _stage_and_merge(cur, target, chunks, columns)
        conn.commit()
    return max(changed, 0)


def _copy(cur: psycopg.Cursor[Any], statement: sql.Composed, chunks: Sequence[bytes]) -> None:
    with cur.copy(statement) as copy:
        for data in chunks:
            view = memoryview(data)
            for start in range(0, len(view), 1 << 20):
                copy.write(view[start : start + (1 << 20)])


def _stage_and_merge(
    cur: psycopg.Cursor[Any], target: WarehouseTable, chunks: Sequence[bytes], columns: Sequence[str]
) -> int:
    """COPY into a temporary table, then ``INSERT .. ON CONFLICT DO UPDATE`` the first copy of each key."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    stage = sql.Identifier("_shoplake_stage")
    non_key = [c for c in columns if c != KEY]
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in non_key
    )
    current = sql.SQL(", ").join(sql.SQL("{}.{}").format(target.ident, sql.Identifier(c)) for c in non_key)
    incoming = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in non_key)
    cur.execute(
        sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(stage, target.ident)
    )
    _copy(cur, sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(stage, cols), chunks)
    cur.execute(
        sql.SQL(
            "INSERT INTO {target} ({cols}) SELECT DISTINCT ON ({key}) {cols} FROM {stage} ORDER BY {key} "
            "ON CONFLICT ({key}) DO UPDATE SET {assignments}, loaded_at = now() "
            "WHERE ({current}) IS DISTINCT FROM ({incoming})"
        ).format(
            target=target.ident,
            cols=cols,
            key=sql.Identifier(KEY),
            stage=stage,
            assignments=assignments,
            current=current,
            incoming=incoming,
        )
    )
    return cur.rowcount


def count_rows(target: WarehouseTable) -> int:
    """Rows in the warehouse table (0 if it does not exist yet)."""
    with psycopg.connect(target.dsn) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{target.schema}.{target.table}",)).fetchone()
        if exists is None or exists[0] is None:
            return 0
        row: Any = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target.ident)).fetchone()
        return int(row[0])
