"""Fault injection for the fault-tolerance tests: stop and restart one real service of the local stack.

Services are stopped through the stack's own supervisor (:mod:`shoplake.stack.process`, by pidfile, so
only this stack's processes are ever signalled) and started again with :func:`shoplake.stack.up`, which
waits for the service's real health check. Unlike ``shoplake down`` these helpers stop exactly one service,
not its dependents (stopping PostgreSQL must not take MLflow with it: the fault is the database alone).
"""

from __future__ import annotations

import shutil
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import psycopg
from confluent_kafka.admin import AdminClient
from deltalake import DeltaTable
from psycopg import sql

from shoplake import stack as local_stack
from shoplake.config import Settings
from shoplake.contracts import schemas, wire
from shoplake.ingestion.avro_encoder import EncodedBatch
from shoplake.ingestion.topics import KafkaUnavailableError, ensure_topic
from shoplake.ingestion.verify import end_offsets
from shoplake.pipeline.config import load_streaming_config
from shoplake.runtime.jobs import run_catch_up
from shoplake.runtime.session import spark_session
from shoplake.stack import process, service
from shoplake.warehouse import dbt_runner
from tests.integration.exactly_once import Landed

STOP_TIMEOUT = 60.0


def stop(settings: Settings, name: str, sig: signal.Signals | None = None) -> None:
    """Stop every process of service ``name`` (its own stop signal unless ``sig``, e.g. SIGKILL, is given)."""
    for proc in reversed(service.get(name).processes):
        process.stop(settings.home, proc.name, STOP_TIMEOUT, sig or proc.stop_signal)
    assert not service.get(name).health(settings).ok, f"{name} still healthy after being stopped"


def start(settings: Settings, name: str) -> None:
    """Start service ``name`` again and wait until it is healthy."""
    local_stack.up(settings, [name])
    assert service.get(name).health(settings).ok


def restart(settings: Settings, name: str, sig: signal.Signals | None = None) -> None:
    stop(settings, name, sig)
    start(settings, name)


@contextmanager
def private_topic(stack: Settings, prefix: str, faulted: str) -> Iterator[Settings]:
    """``stack`` with a fresh topic of its own; afterwards ``faulted`` is healthy again and the topic gone.

    A fault test leaves its service stopped when it fails half-way: starting it again here keeps the next
    test's stack whole.
    """
    ours = stack.with_env(KAFKA_TOPIC=f"{prefix}-{uuid.uuid4().hex[:10]}")
    ensure_topic(ours)
    yield ours
    start(stack, faulted)
    AdminClient({"bootstrap.servers": stack.kafka.bootstrap_servers}).delete_topics([ours.kafka.topic])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0, interval: float = 0.1) -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def settled_end_offsets(settings: Settings, timeout: float = 120.0) -> dict[int, int]:
    """The topic's end offsets once every partition answers again.

    Right after a broker (re)start it is healthy - it answers metadata requests - but for a moment may
    still refuse offset requests for partitions it is taking leadership of (NOT_LEADER_FOR_PARTITION).
    """
    found: dict[int, int] = {}

    def readable() -> bool:
        try:
            found.update(end_offsets(settings))
        except KafkaUnavailableError:
            return False
        return True

    wait_for(readable, "every partition to answer an offset request", timeout=timeout, interval=0.5)
    return found


# The dbt models the invariant's last layer needs: fct_transactions and what it is built from (staging, seeds).
LANE_DBT = dbt_runner.BuildOptions(docs=False, tests=False, select="+fct_transactions")
FCT_TRANSACTIONS = ("marts", "fct_transactions")


@contextmanager
def private_database(settings: Settings, name: str) -> Iterator[Settings]:
    """``settings`` pointed at a new, empty PostgreSQL database ``name``, dropped again afterwards."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(settings.postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield settings.with_env(POSTGRES_DB=name)
    finally:
        with psycopg.connect(settings.postgres.dsn("postgres"), autocommit=True) as conn:
            conn.execute(drop)


def transaction_ids(conn: psycopg.Connection[Any], schema: str, table: str) -> Counter[str]:
    query = sql.SQL("SELECT transaction_id FROM {}").format(sql.Identifier(schema, table))
    return Counter(row[0] for row in conn.execute(query))


def stream_topic(settings: Settings, topic: str) -> Landed:
    """Run the platform's streaming pipeline and dbt over ``topic`` in a private lane; where did it land?

    The fault tests' invariant is "every delivered transaction exactly once in silver, in PostgreSQL raw
    and in fct_transactions". This is the real catch-up (the queries ``shoplake stream --once`` runs, in
    the shared in-process Spark session) into Delta tables and a PostgreSQL database of the lane's own,
    then the real dbt build (:mod:`shoplake.warehouse.dbt_runner`, only the models fct_transactions
    needs) on that database - so the mart holds this topic's rows and nothing else. All removed afterwards.
    """
    suffix = uuid.uuid4().hex[:10]
    root = settings.lake.base_path / f"it-faults-{suffix}"
    with private_database(settings.with_env(DELTA_BASE_PATH=root), f"it_faults_{suffix}") as lane:
        cfg = replace(
            load_streaming_config(lane),  # every table below root, the sink writes into the lane's database
            topics=(topic,),
            checkpoint_root=root / "checkpoints",
            # One progress log for every fault run: its recorder stays attached to the shared Spark session
            # and writes later queries' progress too, so it must outlive this run's folder (removed below).
            metrics_path=settings.lake.base_path / "it-faults-progress.jsonl",
            shuffle_partitions=2,
        )
        stages = tuple(q for q in cfg.continuous_stages if q not in ("gold", "scorer"))
        spark = spark_session(settings, app_name="shoplake-it-faults", shuffle_partitions=2)
        try:
            run_catch_up(spark, cfg, stages)
            silver = DeltaTable(str(cfg.silver_path)).to_pyarrow_table(columns=["transaction_id"])
            quarantined = DeltaTable(str(cfg.quarantine_path)).to_pyarrow_table().num_rows
            dbt_runner.check_connection(lane)
            dbt_runner.run_steps(lane, dbt_runner.build_steps(LANE_DBT))
            with psycopg.connect(lane.postgres.dsn()) as conn:
                raw = transaction_ids(conn, cfg.warehouse_schema, cfg.warehouse_table)
                fct = transaction_ids(conn, *FCT_TRANSACTIONS)
            return Landed(Counter(silver.column(0).to_pylist()), raw, fct, quarantined)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def batch_ids(batches: Iterable[EncodedBatch]) -> set[str]:
    """The transaction ids inside already-encoded batches (decoded with the contract schema)."""
    parsed = schemas.parsed_schema()
    return {wire.decode_record(m, parsed)[1]["transaction_id"] for b in batches for m in b.messages()}
