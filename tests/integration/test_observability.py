"""Health report, data-quality gate and lineage against the real stack (Kafka, Spark/Delta, PostgreSQL, MLflow).

One small world (its own topic, Delta folder, checkpoints, warehouse schema and SHOPLAKE_HOME) is streamed
once; the tests then read it: OK when healthy, FAIL for a stale table, a stuck stream, a missing table
and a failed quality check (the last one also blocks publishing and alerts). Tests run in file order and
the destructive ones come last.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable, write_deltalake
from psycopg import sql

from shoplake import lineage
from shoplake.config import Settings
from shoplake.monitoring import report
from shoplake.monitoring.notify import read_outbox
from shoplake.pipeline.config import StreamingConfig, load_streaming_config
from shoplake.pipeline.silver.decode import NOT_AVRO_FRAMED
from shoplake.quality import audit
from shoplake.runtime import service
from tests.integration.test_streaming_medallion import frame, make_record, produce, register

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

N = 120
POISON = 2


@dataclasses.dataclass
class World:
    settings: Settings
    cfg: StreamingConfig
    topic: str
    schema_id: int
    marts_schema: str


def _produce(world: World, first: int, count: int) -> None:
    records = [make_record(i) for i in range(first, first + count)]
    produce(world.settings, world.topic, [(r["customer_id"].encode(), frame(world.schema_id, r)) for r in records])


def _report(world: World, now: datetime | None = None, cfg: StreamingConfig | None = None) -> dict[str, object]:
    return report.build_report(
        world.settings, now or datetime.now(UTC), cfg or world.cfg, marts_schema=world.marts_schema
    )


@pytest.fixture(scope="module")
def world(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    suffix = uuid.uuid4().hex[:10]
    home = tmp_path_factory.mktemp("obs-home")
    (home / "jvm").symlink_to(stack.jvm_dir)  # the resolved Spark jars, not re-resolved
    root = stack.lake.base_path / f"it-obs-{suffix}"
    # Every table path (gold included) below the world's own root: the report must never read the shared
    # Delta folder, where other tests' gold tables hold many small files (a WARN that is not this world's).
    settings = stack.with_env(
        SHOPLAKE_HOME=home,
        DELTA_BASE_PATH=root,
        ALERT_DRY_RUN="true",
        ALERT_WEBHOOK_URL="http://127.0.0.1:9/never-called",
    )
    topic = f"it-obs-{suffix}"
    admin = AdminClient({"bootstrap.servers": stack.kafka.bootstrap_servers})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)
    cfg = dataclasses.replace(
        load_streaming_config(settings),
        topics=(topic,),
        continuous_stages=("medallion",),  # gold has its own tests; it would double the time
        checkpoint_root=root / "checkpoints",
        metrics_path=root / "progress.jsonl",
        warehouse_schema=f"it_obs_{suffix}",
        shuffle_partitions=2,
    )
    w = World(settings, cfg, topic, register(stack, f"{topic}-value"), f"it_obs_marts_{suffix}")
    _produce(w, 0, N)
    produce(stack, topic, [(b"k", b"\x07not avro at all")] * POISON)
    service.run_once(settings, cfg, cfg.continuous_stages)  # Kafka -> bronze + silver/quarantine + raw
    # dbt's marts stand-in: fct_transactions with the build stamp the report reads (dbt itself is tested elsewhere)
    with psycopg.connect(cfg.postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(w.marts_schema)))
        conn.execute(
            sql.SQL("CREATE TABLE {} AS SELECT transaction_id, now() AS built_at FROM {}").format(
                sql.Identifier(w.marts_schema, "fct_transactions"),
                sql.Identifier(cfg.warehouse_schema, cfg.warehouse_table),
            )
        )
    yield w
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as conn:
        for schema in (cfg.warehouse_schema, w.marts_schema):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    admin.delete_topics([topic])


def test_healthy_run_is_ok_with_every_section_filled(world: World) -> None:
    quality = audit.publish_gate(world.settings, world.cfg, datetime.now(UTC))
    assert quality.passed, quality.failed
    written = report.write_report(world.settings, _report(world))
    doc = written.content
    assert (doc["status"], doc["problems"], doc["warnings"]) == ("OK", [], [])
    tables = {t["name"]: t for t in doc["tables"]}  # type: ignore[attr-defined]
    assert tables["bronze"]["rows"] == N + POISON and tables["silver"]["rows"] == N
    assert "transaction_id: string" in tables["silver"]["columns"]
    assert doc["quarantine"] == {"rows": POISON, "top_reasons": [{"reason": NOT_AVRO_FRAMED, "rows": POISON}]}
    lag = doc["kafka_lag"]
    assert lag["total_lag"] == 0 and lag["consumed"] == N + POISON and len(lag["partitions"]) == 3  # type: ignore[index]
    assert doc["warehouse"]["raw_rows"] == N and doc["warehouse"]["marts"] == {"fct_transactions": N}  # type: ignore[index]
    queries = doc["streaming"]["queries"]  # type: ignore[index]
    assert set(queries) == {"medallion"}
    assert all(c["passed"] for c in doc["quality"]["checks"])  # type: ignore[index]
    html = (written.path.parent / "latest.html").read_text()
    assert "Shoplake health: <span style='color:#2e7d32'>OK</span>" in html and "<svg" in html
    assert json.loads((written.path.parent / "latest.json").read_text())["status"] == "OK"


def test_lineage_of_the_run_names_every_dataset_it_touched(world: World) -> None:
    events = [e for e in lineage.read_events(world.settings) if e["job"]["name"] == "stream"]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    named = {d["name"] for e in events for d in e["inputs"] + e["outputs"]}
    delta_tables = {str(p.parent) for p in world.cfg.bronze_path.parent.parent.glob("*/*/_delta_log")}
    assert delta_tables == {str(world.cfg.bronze_path), str(world.cfg.silver_path), str(world.cfg.quarantine_path)}
    raw = f"{world.settings.postgres.db}.{world.cfg.warehouse_schema}.{world.cfg.warehouse_table}"
    assert named == delta_tables | {world.topic, raw}


def test_stale_tables_fail(world: World) -> None:
    later = datetime.now(UTC) + timedelta(hours=world.settings.health.max_table_age_hours + 1)
    doc = _report(world, now=later)
    assert doc["status"] == "FAIL"
    assert any(p.startswith("table silver: stale") for p in doc["problems"])  # type: ignore[attr-defined]


def test_missing_table_fails(world: World) -> None:
    gone = dataclasses.replace(world.cfg, silver_path=world.cfg.silver_path.parent / "never-written")
    doc = _report(world, cfg=gone)
    assert doc["status"] == "FAIL"
    assert any(p.startswith("table silver: missing") for p in doc["problems"])  # type: ignore[attr-defined]


def test_lag_growing_across_two_reports_is_a_stuck_stream(world: World) -> None:
    _produce(world, N, 10)  # the stream is not running: nothing consumes these
    first = report.write_report(world.settings, _report(world))
    _produce(world, N + 10, 10)
    second = report.write_report(world.settings, _report(world))
    assert first.content["kafka_lag"]["total_lag"] == 10 and second.content["kafka_lag"]["total_lag"] == 20
    assert second.status == "FAIL"
    assert any("stream stuck: lag grew 10 -> 20" in p for p in second.problems)


def test_failed_quality_check_blocks_publishing_alerts_and_fails_the_report(world: World) -> None:
    silver = DeltaTable(str(world.cfg.silver_path)).to_pyarrow_table()
    write_deltalake(str(world.cfg.silver_path), silver.slice(0, 1), mode="append")  # a duplicate transaction
    with pytest.raises(audit.DataQualityError, match="unique_transaction_id"):
        audit.publish_gate(world.settings, world.cfg, datetime.now(UTC), caller="it-observability")
    sent = read_outbox(world.settings)
    assert sent and "data quality failed" in json.dumps(sent[-1]) and "unique_transaction_id" in json.dumps(sent[-1])
    with psycopg.connect(world.cfg.postgres_dsn) as conn:
        stored = conn.execute(
            "SELECT passed FROM monitoring.dq_results WHERE run_id = %s AND check_name = 'unique_transaction_id'",
            (audit.latest(world.settings)["run_id"],),  # type: ignore[index]
        ).fetchone()
    assert stored == (False,)
    doc = _report(world)
    assert doc["status"] == "FAIL"
    assert any(p.startswith("data quality: unique_transaction_id") for p in doc["problems"])  # type: ignore[attr-defined]
