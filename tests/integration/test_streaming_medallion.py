"""The streaming medallion against the real stack: Kafka + registry -> Spark -> Delta -> PostgreSQL.

Each test produces Confluent-framed Avro to its own topic, runs the real jobs, and checks silver,
quarantine and ``raw.*`` exactly: counts, field-for-field equality, replays, poison and a SIGKILL.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import psycopg
import pyarrow as pa
import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from deltalake import DeltaTable
from psycopg import sql
from pyspark.sql import DataFrame, SparkSession

from shoplake.config import Settings, env_for_children
from shoplake.contracts.schemas import schema_dict, schema_text
from shoplake.pipeline.bronze import bronze_projection
from shoplake.pipeline.config import StreamingConfig, load_streaming_config
from shoplake.pipeline.medallion import MedallionBatch, warehouse_target
from shoplake.pipeline.silver.enrich import ENRICHMENT_COLUMNS, load_reference
from shoplake.pipeline.sinks.postgres import WarehouseTable, ensure_table, upsert_batches
from shoplake.pipeline.tables import ensure_bronze_table, ensure_quarantine_table, ensure_silver_table
from shoplake.runtime.jobs import run_catch_up, run_continuous
from shoplake.runtime.lane import LaneError, reset
from shoplake.runtime.session import spark_session
from shoplake.warehouse import raw_loader

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

BASE_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z; every record is stamped relative to it
CONTRACT_FIELDS = [f["name"] for f in schema_dict()["fields"]]


# ---- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spark(stack: Settings) -> Iterator[SparkSession]:
    yield spark_session(stack, app_name="shoplake-it-streaming", shuffle_partitions=2)


@dataclasses.dataclass
class Lane:
    """One test's isolated world: topic, Delta folder, checkpoints and warehouse schema."""

    settings: Settings
    cfg: StreamingConfig
    topic: str
    schema_id: int
    root: Path


@pytest.fixture
def lane(stack: Settings) -> Iterator[Lane]:
    suffix = uuid.uuid4().hex[:10]
    topic = f"it-stream-{suffix}"
    root = stack.lake.base_path / f"it-{suffix}"
    admin = AdminClient({"bootstrap.servers": stack.kafka.bootstrap_servers})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)
    schema_id = register(stack, f"{topic}-value")
    cfg = dataclasses.replace(
        load_streaming_config(stack.with_env(DELTA_BASE_PATH=root)),  # every table below root
        topics=(topic,),
        checkpoint_root=root / "checkpoints",
        metrics_path=root / "progress.jsonl",
        warehouse_schema=f"it_{suffix}",
        max_offsets_per_trigger=100_000,
        shuffle_partitions=2,
    )
    yield Lane(stack, cfg, topic, schema_id, root)
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(cfg.warehouse_schema)))
    admin.delete_topics([topic])


def register(settings: Settings, subject: str) -> int:
    resp = requests.post(
        f"{settings.registry.url}/subjects/{subject}/versions",
        json={"schema": schema_text()},
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        timeout=30,
    )
    resp.raise_for_status()
    return int(resp.json()["id"])


# ---- producing ------------------------------------------------------------------------------------------
def make_record(i: int, **overrides: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "transaction_id": f"it-{i:08d}",
        "event_time": BASE_MS + i * 1_000,
        "customer_id": f"c-{i % 37}",
        "merchant_id": f"m-{i % 11}",
        "merchant_category": ("grocery", "electronics", "travel")[i % 3],
        "merchant_country": ("US", "DE", "GB")[i % 3],
        "amount_cents": 100 + (i * 7919) % 50_000,
        "currency": ("USD", "EUR", "GBP")[i % 3],
        "payment_method": ("card", "paypal", "apple_pay")[i % 3],
        "channel": ("web", "mobile_app", "marketplace")[i % 3],
        "device_id": f"d-{i % 53}",
        "device_type": ("mobile", "desktop", "tablet")[i % 3],
        "ip_address": f"10.0.{i % 256}.{(i // 256) % 256}",
        "ip_country": ("US", "DE", "NG")[i % 3],
        "status": ("approved", "declined", "pending")[i % 3],
        "is_fraud": i % 29 == 0,
        "fraud_pattern": "card_testing" if i % 29 == 0 else None,
    }
    return {**rec, **overrides}


def frame(schema_id: int, rec: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema_dict()), rec)
    return b"\x00" + struct.pack(">I", schema_id) + buf.getvalue()


def produce(settings: Settings, topic: str, messages: list[tuple[bytes | None, bytes | None]]) -> None:
    """Send ``(key, value)`` pairs and wait until every one is acknowledged.

    Kafka stamps them with the produce time, as the platform's producer does: stamping them with the
    (past) event time would let the broker's time-based retention delete them under the test's feet.
    """
    producer = Producer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "enable.idempotence": True, "linger.ms": 20}
    )
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    for key, value in messages:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert failures == []


def produce_records(lane: Lane, records: list[dict[str, Any]]) -> None:
    produce(
        lane.settings,
        lane.topic,
        [(r["customer_id"].encode(), frame(lane.schema_id, r)) for r in records],
    )


# ---- reading results ------------------------------------------------------------------------------------
def silver_records(spark: SparkSession, cfg: StreamingConfig) -> list[dict[str, Any]]:
    df = spark.read.format("delta").load(str(cfg.silver_path))
    out = []
    for row in df.selectExpr(
        *CONTRACT_FIELDS[:1], "unix_millis(event_time) AS event_time", *CONTRACT_FIELDS[2:]
    ).collect():
        out.append(row.asDict())
    return sorted(out, key=lambda r: r["transaction_id"])


def warehouse_records(cfg: StreamingConfig) -> list[dict[str, Any]]:
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in CONTRACT_FIELDS if c != "event_time")
    query = sql.SQL(
        "SELECT {}, (extract(epoch FROM event_time) * 1000)::bigint AS event_time FROM {} ORDER BY transaction_id"
    ).format(cols, sql.Identifier(cfg.warehouse_schema, cfg.warehouse_table))
    with psycopg.connect(cfg.postgres_dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(query).fetchall()
    return [{k: (v.strip() if isinstance(v, str) else v) for k, v in r.items()} for r in rows]


def warehouse_count(cfg: StreamingConfig) -> int:
    with psycopg.connect(cfg.postgres_dsn) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{cfg.warehouse_schema}.{cfg.warehouse_table}",)).fetchone()
        if exists is None or exists[0] is None:
            return 0
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(cfg.warehouse_schema, cfg.warehouse_table))
        ).fetchone()
        return int(row[0]) if row else 0


def forget_last_commit(cfg: StreamingConfig, query: str) -> None:
    """Delete the query's newest commit marker, as if the process died right after its sinks wrote."""
    commits = sorted((cfg.checkpoint(query) / "commits").glob("[0-9]*"), key=lambda p: int(p.name))
    assert commits, f"{query} has no committed batch"
    commits[-1].unlink()
    crc = commits[-1].with_name(f".{commits[-1].name}.crc")
    crc.unlink(missing_ok=True)


def lineage(spark: SparkSession, cfg: StreamingConfig) -> list[tuple[Any, ...]]:
    """(transaction_id, kafka offset, ingested_at in microseconds) of every silver row, sorted."""
    df = spark.read.format("delta").load(str(cfg.silver_path))
    rows = df.selectExpr("transaction_id", "kafka_offset", "unix_micros(ingested_at)").collect()
    return sorted(tuple(r) for r in rows)


def warehouse_lineage(cfg: StreamingConfig) -> list[tuple[Any, ...]]:
    query = sql.SQL(
        "SELECT transaction_id, kafka_offset, (extract(epoch FROM ingested_at) * 1000000)::bigint FROM {}"
    ).format(sql.Identifier(cfg.warehouse_schema, cfg.warehouse_table))
    with psycopg.connect(cfg.postgres_dsn) as conn:
        return sorted(tuple(r) for r in conn.execute(query).fetchall())


def delta_count(spark: SparkSession, path: Path) -> int:
    return spark.read.format("delta").load(str(path)).count()


def files_per_date(path: Path) -> dict[str, int]:
    """Data files of a Delta table partitioned by ``event_date``, per partition (delta-rs: the live files)."""
    dates = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).column("partition.event_date").to_pylist()
    return dict(sorted(Counter(str(d) for d in dates).items()))


def prepare_medallion(spark: SparkSession, cfg: StreamingConfig) -> None:
    """What ``start_medallion`` sets up before a batch runs: the tables and the query's checkpoint id."""
    for ensure in (ensure_bronze_table, ensure_silver_table, ensure_quarantine_table):
        ensure(spark, cfg)
    ensure_table(warehouse_target(cfg))
    cfg.checkpoint("medallion").mkdir(parents=True)
    (cfg.checkpoint("medallion") / "metadata").write_text(json.dumps({"id": uuid.uuid4().hex}))


def kafka_batch(spark: SparkSession, cfg: StreamingConfig, topic: str) -> DataFrame:
    """Batch 0 as the medallion query sees it: the whole topic through the bronze projection."""
    return bronze_projection(
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", cfg.bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("includeHeaders", "true")
        .load()
    )


# ---- tests ----------------------------------------------------------------------------------------------
def test_n_produced_lands_exactly_once_field_for_field(spark: SparkSession, lane: Lane) -> None:
    records = [make_record(i) for i in range(600)]
    produce_records(lane, records)
    run_catch_up(spark, lane.cfg)
    assert delta_count(spark, lane.cfg.bronze_path) == 600
    assert delta_count(spark, lane.cfg.quarantine_path) == 0
    assert silver_records(spark, lane.cfg) == records
    assert warehouse_records(lane.cfg) == records

    # The same logical run ingested again, with three new records (one sent twice): bronze keeps every byte,
    # silver and the warehouse get only the new records' first copies.
    more = [make_record(i) for i in range(600, 603)]
    produce_records(lane, [*records, *more, more[0]])
    run_catch_up(spark, lane.cfg)
    assert delta_count(spark, lane.cfg.bronze_path) == 1204
    assert silver_records(spark, lane.cfg) == records + more
    assert warehouse_records(lane.cfg) == records + more
    progress = [json.loads(line) for line in lane.cfg.metrics_path.read_text().splitlines()]
    assert {p["query"] for p in progress} == {"medallion"}
    # Silver and PostgreSQL hold the same copy of each record, lineage included (one micro-batch wrote both).
    assert lineage(spark, lane.cfg) == warehouse_lineage(lane.cfg)

    # Silver carries the reference-data attributes (record 0: grocery at a US merchant, paid from the US, 1.00 USD).
    first = spark.read.format("delta").load(str(lane.cfg.silver_path)).where("transaction_id = 'it-00000000'")
    assert first.select(*ENRICHMENT_COLUMNS).first() == (
        "everyday",
        False,
        "north_america",
        "low",
        "north_america",
        "low",
        False,
        Decimal("1.00"),
    )
    # The sink indexes loaded_at (dbt's incremental models and source freshness filter on it).
    with psycopg.connect(lane.cfg.postgres_dsn) as conn:
        indexes = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (lane.cfg.warehouse_schema, lane.cfg.warehouse_table),
        ).fetchall()
    assert any("(loaded_at)" in row[0] for row in indexes)


def test_poison_is_quarantined_with_its_reason_and_valid_records_flow(spark: SparkSession, lane: Lane) -> None:
    good = [make_record(i) for i in range(50)]
    valid_frame = frame(lane.schema_id, make_record(999))
    poison: list[tuple[bytes, str]] = [
        (os.urandom(64).replace(b"\x00", b"\x01"), "not_avro_framed"),
        (b"\x07" + valid_frame[1:], "not_avro_framed"),
        (b"\x00" + struct.pack(">I", 987_654) + valid_frame[5:], "unknown_schema_id"),
        (valid_frame[:30], "truncated_body"),
        (frame(lane.schema_id, make_record(1001, amount_cents=0)), "invalid_amount"),
        (frame(lane.schema_id, make_record(1002, amount_cents=-250)), "invalid_amount"),
        (frame(lane.schema_id, make_record(1003, currency="ZZZ")), "invalid_currency"),
        (frame(lane.schema_id, make_record(1004, merchant_id="")), "missing_merchant_id"),
        (frame(lane.schema_id, make_record(1005, channel="fax")), "invalid_channel"),
    ]
    messages: list[tuple[bytes | None, bytes | None]] = [(None, value) for value, _ in poison]
    produce(lane.settings, lane.topic, messages)
    produce_records(lane, good)
    run_catch_up(spark, lane.cfg)

    quarantine = spark.read.format("delta").load(str(lane.cfg.quarantine_path)).collect()
    got = sorted((bytes(r.value), r.reason) for r in quarantine)
    assert got == sorted(poison)
    assert all(r.detail for r in quarantine)
    assert all(r.topic == lane.topic and r.offset is not None for r in quarantine)
    assert silver_records(spark, lane.cfg) == good
    assert warehouse_records(lane.cfg) == good

    # A crash after the sinks committed but before the checkpoint did: Spark replays the same batch ids.
    forget_last_commit(lane.cfg, "medallion")
    run_catch_up(spark, lane.cfg)
    assert delta_count(spark, lane.cfg.quarantine_path) == len(poison)
    assert silver_records(spark, lane.cfg) == good
    assert warehouse_records(lane.cfg) == good


class _CrashError(RuntimeError):
    pass


class _CrashBeforeSilverCommit(MedallionBatch):
    """Dies where a crash of the fused path hurts most: PostgreSQL upserted, the silver commit not written."""

    def _append(self, rows: Any) -> None:
        raise _CrashError("killed before the silver commit")


class _CrashMidWarehouseLoad(MedallionBatch):
    """Dies while PostgreSQL is being loaded on the executors: one Kafka partition's rows committed, not the rest."""

    def _load_warehouse(self, rows: Any, warehouse: WarehouseTable) -> int:
        super()._load_warehouse(rows.where("kafka_partition = 0"), warehouse)
        raise _CrashError("killed after the first partitions were loaded")


@pytest.mark.parametrize("crashing", [_CrashBeforeSilverCommit, _CrashMidWarehouseLoad])
def test_crash_between_warehouse_upsert_and_silver_commit_replays_exactly(
    spark: SparkSession, lane: Lane, crashing: type[MedallionBatch]
) -> None:
    records = [make_record(i) for i in range(40)]
    produce_records(lane, records)
    # The mid-load crash needs the executor-side load (one transaction per partition); small batches are
    # otherwise loaded from the driver in one transaction.
    cfg = dataclasses.replace(lane.cfg, warehouse_driver_load_max_rows=0 if crashing is _CrashMidWarehouseLoad else 40)
    prepare_medallion(spark, cfg)
    # ingested_at is evaluated per execution, so the replay below stamps different values, as a real replay does.
    batch = kafka_batch(spark, cfg, lane.topic)
    reference = load_reference()
    with pytest.raises(_CrashError):
        crashing(cfg, schema_dict(), reference, warehouse_target(cfg))(batch, 0)
    loaded = warehouse_count(cfg)
    assert delta_count(spark, cfg.silver_path) == 0
    assert loaded == len(records) if crashing is _CrashBeforeSilverCommit else 0 < loaded < len(records)

    MedallionBatch(cfg, schema_dict(), reference, warehouse_target(cfg))(
        batch, 0
    )  # Spark replays the unfinished batch 0
    assert delta_count(spark, cfg.bronze_path) == len(records)  # bronze's first write stands (txnVersion)
    assert silver_records(spark, cfg) == records
    assert warehouse_records(cfg) == records
    assert lineage(spark, cfg) == warehouse_lineage(cfg)  # PostgreSQL now holds the committed silver copy


def test_a_continuous_trickle_below_min_offsets_lands_once_the_trigger_delay_passes(
    spark: SparkSession, lane: Lane
) -> None:
    """Fewer records than ``min_offsets_per_trigger`` are not held back: the batch runs after the delay."""
    cfg = dataclasses.replace(lane.cfg, min_offsets_per_trigger=1_000, max_trigger_delay_s=2, compaction_interval_s=0)
    records = [make_record(i) for i in range(10)]
    stop, started, failed = threading.Event(), threading.Event(), []

    def serve() -> None:
        try:
            run_continuous(spark, cfg, stop, on_started=lambda _: started.set(), stages=("medallion",))
        except BaseException as exc:  # reported by the test thread below
            failed.append(exc)
            started.set()

    service = threading.Thread(target=serve, daemon=True)
    service.start()
    try:
        assert started.wait(120) and not failed, failed
        produce_records(lane, records)
        deadline = time.monotonic() + 120
        while medallion_rows(cfg) < len(records):  # a batch's progress is logged once it has committed
            assert not failed and time.monotonic() < deadline, failed or "the trickle never landed"
            time.sleep(0.5)
    finally:
        stop.set()
        service.join(timeout=120)
    assert not failed, failed
    assert medallion_rows(cfg) == len(records)
    assert silver_records(spark, cfg) == records
    assert warehouse_records(cfg) == records


def medallion_rows(cfg: StreamingConfig) -> int:
    """Kafka records the medallion's committed batches read, from the progress log."""
    if not cfg.metrics_path.is_file():
        return 0
    progress = [json.loads(line) for line in cfg.metrics_path.read_text().splitlines()]
    return sum(p["input_rows"] for p in progress if p["query"] == "medallion")


@pytest.mark.parametrize("continuous", [True, False])
def test_a_small_continuous_batch_writes_one_file_per_date_partition(
    spark: SparkSession, lane: Lane, continuous: bool
) -> None:
    """Continuous mode: bronze and silver get one file per date and batch, not one per Kafka partition.

    Catch-up (one task per Kafka range, executor-side load) is the contrast: the same batch over the topic's
    three partitions makes a file per partition and date in both tables.
    """
    day = 86_400_000
    records = [make_record(i, event_time=BASE_MS + (i % 2) * day + i * 1_000) for i in range(300)]
    produce_records(lane, records)
    cfg = dataclasses.replace(lane.cfg, warehouse_driver_load_max_rows=300 if continuous else 0)
    prepare_medallion(spark, cfg)
    batch = kafka_batch(spark, cfg, lane.topic)
    assert batch.rdd.getNumPartitions() == 3
    body = MedallionBatch(cfg, schema_dict(), load_reference(), warehouse_target(cfg), one_bronze_task=continuous)
    body(batch, 0)
    files = 1 if continuous else 3
    # Bronze is partitioned by the Kafka timestamp's date (today), silver by the events' own dates.
    assert list(files_per_date(cfg.bronze_path).values()) == [files]
    assert files_per_date(cfg.silver_path) == {"2025-11-24": files, "2025-11-25": files}
    assert delta_count(spark, cfg.bronze_path) == len(records)
    assert silver_records(spark, cfg) == sorted(records, key=lambda r: r["transaction_id"])
    assert warehouse_records(cfg) == sorted(records, key=lambda r: r["transaction_id"])


def test_a_partition_whose_rows_fail_midway_leaves_postgres_unchanged(lane: Lane) -> None:
    """The executor-side load of one partition is all or nothing, whatever point its input fails at."""
    target = warehouse_target(lane.cfg)
    ensure_table(target)
    (generated,) = raw_loader.batches(30, "sink-midway")
    rows = raw_loader.silver_rows(generated.to_columns(), lane.topic, 0)
    assert upsert_batches(target, iter(rows.to_batches())).changed == 30
    before = warehouse_records(lane.cfg)
    refunded = rows.set_column(rows.schema.get_field_index("status"), "status", pa.array(["refunded"] * 30))
    batches = refunded.to_batches(max_chunksize=10)

    def failing() -> Iterator[pa.RecordBatch]:
        yield from batches[:2]
        raise _CrashError("the partition's input broke off")

    with pytest.raises(_CrashError):
        upsert_batches(target, failing())
    assert warehouse_records(lane.cfg) == before
    assert upsert_batches(target, iter(batches)).changed == 30  # the whole partition, once
    assert {r["status"] for r in warehouse_records(lane.cfg)} == {"refunded"}


def test_a_batch_repeating_a_new_key_is_merged_not_copied(lane: Lane) -> None:
    """The direct COPY of new keys refuses a key repeated within the batch; the keyed merge loads it once."""
    target = warehouse_target(lane.cfg)
    ensure_table(target)
    (generated,) = raw_loader.batches(5, "sink-repeat")
    rows = raw_loader.silver_rows(generated.to_columns(), lane.topic, 0)
    assert upsert_batches(target, iter(pa.concat_tables([rows, rows.slice(0, 1)]).to_batches())).changed == 5
    assert warehouse_count(lane.cfg) == 5
    assert upsert_batches(target, iter(rows.to_batches())).changed == 0  # keys stored already: merged, unchanged


def test_sigkill_mid_run_then_restart_still_exactly_n(spark: SparkSession, lane: Lane, tmp_path: Path) -> None:
    n = 12_000
    records = [make_record(i) for i in range(n)]
    produce_records(lane, records)
    cfg = lane.cfg
    conf = tmp_path / "streaming.toml"
    conf.write_text(
        "\n".join(
            [
                "[pipeline]",
                'continuous = ["medallion"]',
                "[source]",
                f'topics = ["{lane.topic}"]',
                "max_offsets_per_trigger = 1500",
                "[tables]",
                f'bronze = "{cfg.bronze_path.relative_to(lane.settings.lake.base_path)}"',
                f'silver = "{cfg.silver_path.relative_to(lane.settings.lake.base_path)}"',
                f'quarantine = "{cfg.quarantine_path.relative_to(lane.settings.lake.base_path)}"',
                "[paths]",
                f'checkpoints = "{cfg.checkpoint_root}"',
                f'progress_log = "{cfg.metrics_path}"',
                "[triggers]",
                'medallion = "1 second"',
                "[warehouse]",
                f'schema = "{cfg.warehouse_schema}"',
                "[spark]",
                "shuffle_partitions = 2",
            ]
        )
    )
    env = env_for_children(lane.settings, STREAMING_CONFIG=str(conf))
    log = (tmp_path / "stream.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoplake.cli", "stream", "run"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while warehouse_count(cfg) == 0:
            assert proc.poll() is None, f"runner died: {(tmp_path / 'stream.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no warehouse batch within 300 s"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    at_kill = warehouse_count(cfg)
    assert 0 < at_kill < n, f"the kill must land mid-run (warehouse had {at_kill} of {n})"

    run_catch_up(spark, cfg)
    assert delta_count(spark, cfg.bronze_path) == n
    assert silver_records(spark, cfg) == records
    assert warehouse_count(cfg) == n


def test_a_lane_left_by_the_staged_pipeline_is_refused_and_rebuilt_exactly_once_after_a_reset(
    spark: SparkSession, lane: Lane, tmp_path: Path
) -> None:
    """A staged checkpoint stops every run before it writes, naming the reset; the reset moves the lane aside
    and the next run rebuilds it from Kafka: every record once in bronze and silver, PostgreSQL unchanged."""
    cfg = lane.cfg
    first = [make_record(i) for i in range(300)]
    produce_records(lane, first)
    run_catch_up(spark, cfg)
    (cfg.checkpoint_root / "bronze" / "offsets").mkdir(parents=True)  # what the staged reader left
    produce_records(lane, [make_record(i) for i in range(300, 350)])

    with pytest.raises(LaneError, match=r"staged query 'bronze'[\s\S]*Run `shoplake stream reset`"):
        run_catch_up(spark, cfg)
    assert delta_count(spark, cfg.bronze_path) == 300

    retired = reset(cfg, tmp_path / "home", "all")
    assert retired is not None
    assert (retired / "delta" / "checkpoints" / "bronze" / "offsets").is_dir()
    assert DeltaTable.is_deltatable(str(retired / "delta" / "bronze" / "transactions"))
    assert not cfg.checkpoint_root.exists() and not cfg.bronze_path.exists()

    run_catch_up(spark, cfg)
    records = first + [make_record(i) for i in range(300, 350)]
    bronze = spark.read.format("delta").load(str(cfg.bronze_path))
    assert bronze.count() == 350
    assert bronze.select("partition", "offset").distinct().count() == 350
    assert silver_records(spark, cfg) == records
    assert warehouse_records(cfg) == records
