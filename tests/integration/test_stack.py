"""The local stack against real services, driven through the ``shoplake`` command line.

The module starts each service with ``shoplake up``, talks to it with the clients the platform uses
(confluent_kafka, SchemaRegistryClient, psycopg, mlflow), stops everything and proves nothing is left
listening or alive, then restarts and proves Kafka messages and registry schemas survived. It leaves
the stack running, healthy, for the tests that follow in the same session.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import shoplake.contracts
from shoplake import stack as local_stack
from shoplake.config import Settings, env_for_children
from shoplake.stack import process, service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

TRANSACTION_SCHEMA = Path(shoplake.contracts.__file__).parent / "schemas" / "transaction-v1.avsc"


def shoplake(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shoplake.cli", *args], capture_output=True, text=True, env=env, check=False
    )


def statuses() -> dict[str, dict[str, object]]:
    out = shoplake("status", "--json")
    return {row["name"]: row for row in json.loads(out.stdout)}


def supervised_pids(settings: Settings) -> dict[str, int]:
    """Every supervised process of the core services that has a pidfile."""
    pids = {}
    for name in local_stack.SERVICES:
        for proc in service.get(name).processes:
            pid = process.read_pidfile(process.pidfile_path(settings.home, proc.name))
            if pid is not None:
                pids[proc.name] = pid
    return pids


def claimed_ports(settings: Settings) -> list[int]:
    return [claim.port for name in local_stack.SERVICES for claim in service.get(name).ports(settings)]


def create_topic(settings: Settings, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    futures[topic].result(timeout=30)


def produce(settings: Settings, topic: str, key: bytes, value: bytes) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "acks": "all"})
    errors: list[object] = []
    producer.produce(topic, key=key, value=value, on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(30) == 0
    assert errors == [None]


def consume_until(settings: Settings, topic: str, key: bytes, deadline_s: float = 60) -> bytes | None:
    """Value of the first message with ``key`` read from the start of ``topic`` (None at the deadline)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            if msg.key() == key:
                value: bytes = msg.value()
                return value
    finally:
        consumer.close()
    return None


def register_transaction_schema(settings: Settings, subject: str) -> int:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    client = SchemaRegistryClient({"url": settings.registry.url})
    schema_id: int = client.register_schema(subject, Schema(TRANSACTION_SCHEMA.read_text(), "AVRO"))
    return schema_id


# ---- tests, in order: start, use, stop, restart ---------------------------------------------------------
def test_cli_starts_each_service(stack: Settings) -> None:
    assert shoplake("down").returncode == 0
    assert shoplake("status").returncode == 1
    for name in local_stack.SERVICES:
        result = shoplake("up", name)
        assert result.returncode == 0, result.stderr
        assert statuses()[name]["healthy"] is True, result.stdout
    status = shoplake("status")
    assert status.returncode == 0, status.stdout
    before = supervised_pids(stack)
    again = shoplake("up")  # everything healthy: a no-op that keeps the same processes
    assert again.returncode == 0
    assert supervised_pids(stack) == before


def test_kafka_broker_writes_its_server_log(stack: Settings) -> None:
    """The broker's own log4j2 output reaches ``logs/kafka.log``, not just the JVM's stdout noise.

    With the SLF4J 1.7 API on the classpath next to the SLF4J 2 binding, the broker fell back to the NOP
    logger and this file held three SLF4J warnings and nothing else. Only the latest start is checked.
    """
    log = local_stack.log_path(stack, "kafka")
    sections = log.read_text(errors="replace").split("==== shoplake: starting kafka: ")
    assert len(sections) > 1, f"{log} has no start marker of the supervisor"
    latest = sections[-1]
    assert "Kafka Server started (kafka.server.KafkaRaftServer)" in latest
    assert "NOP" not in latest and "StaticLoggerBinder" not in latest


def test_unknown_service_is_rejected_with_the_valid_names() -> None:
    result = shoplake("up", "kafak")
    assert result.returncode == 2
    assert "kafak" in result.stderr
    for name in local_stack.SERVICES:
        assert name in result.stderr


def test_kafka_produce_consume(stack: Settings) -> None:
    topic = f"test.stack.{uuid.uuid4().hex[:8]}"
    create_topic(stack, topic)
    produce(stack, topic, b"k1", b"hello shoplake")
    assert consume_until(stack, topic, b"k1") == b"hello shoplake"


def test_registry_register_and_fetch_avro(stack: Settings) -> None:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    subject = f"test-stack-{uuid.uuid4().hex[:8]}-value"
    schema_id = register_transaction_schema(stack, subject)
    client = SchemaRegistryClient({"url": stack.registry.url})
    fetched = client.get_schema(schema_id)
    assert fetched.schema_type == "AVRO"
    assert json.loads(fetched.schema_str)["name"] == json.loads(TRANSACTION_SCHEMA.read_text())["name"]
    latest = client.get_latest_version(subject)
    assert latest.schema_id == schema_id
    assert subject in client.get_subjects()


def test_postgres_has_all_three_databases(stack: Settings) -> None:
    import psycopg

    for db in (stack.postgres.db, stack.postgres.airflow_db, stack.postgres.mlflow_db):
        with psycopg.connect(stack.postgres.dsn(db)) as conn:
            row = conn.execute("select current_database(), 40 + 2").fetchone()
        assert row == (db, 42)


def test_mlflow_logs_a_run_with_an_artifact(stack: Settings, tmp_path: Path) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(stack.mlflow.tracking_uri)
    mlflow.set_experiment("test-stack")
    note = tmp_path / "note.txt"
    note.write_text("artifact body")
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("f1", 0.9)
        mlflow.log_artifact(str(note))
    client = MlflowClient(stack.mlflow.tracking_uri)
    stored = client.get_run(run.info.run_id)
    assert stored.data.params["alpha"] == "0.5"
    assert stored.data.metrics["f1"] == 0.9
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="note.txt", dst_path=tmp_path)
    assert Path(local).read_text() == "artifact body"


def test_down_leaves_nothing_and_restart_keeps_messages_and_schemas(stack: Settings) -> None:
    topic = f"test.persist.{uuid.uuid4().hex[:8]}"
    create_topic(stack, topic)
    key = uuid.uuid4().bytes
    produce(stack, topic, key, b"survives restarts")
    subject = f"test-persist-{uuid.uuid4().hex[:8]}-value"
    schema_id = register_transaction_schema(stack, subject)
    pids = supervised_pids(stack)
    assert set(pids) >= {"postgres", "kafka", "registry", "registry-gateway", "mlflow"}

    result = shoplake("down")
    assert result.returncode == 0, result.stderr
    assert [p for p in claimed_ports(stack) if not process.port_free(stack.bind_host, p)] == []
    assert [p for p in claimed_ports(stack) if process.port_open(stack.bind_host, p)] == []
    assert {name: pid for name, pid in pids.items() if process.pid_alive(pid) or process.group_members(pid)} == {}
    assert supervised_pids(stack) == {}, "pidfiles left behind"
    assert shoplake("status").returncode == 1

    result = shoplake("up")
    assert result.returncode == 0, result.stderr
    assert consume_until(stack, topic, key) == b"survives restarts"
    from confluent_kafka.schema_registry import SchemaRegistryClient

    client = SchemaRegistryClient({"url": stack.registry.url})
    assert client.get_latest_version(subject).schema_id == schema_id
    assert register_transaction_schema(stack, subject) == schema_id  # same schema, same id after restart
    assert shoplake("status").returncode == 0


@pytest.mark.parametrize("listening", [False, True], ids=["bound", "listening"])
@pytest.mark.parametrize(
    "case",
    [("postgres", "POSTGRES_PORT", "{port}"), ("kafka", "KAFKA_BOOTSTRAP_SERVERS", "localhost:{port}")],
    ids=["postgres", "kafka"],
)
def test_port_in_use_is_reported_before_anything_starts(
    stack: Settings, tmp_path: Path, case: tuple[str, str, str], listening: bool
) -> None:
    service_name, variable, value = case
    with socket.socket() as squatter:
        squatter.bind((stack.bind_host, 0))
        if listening:
            squatter.listen()
        port = squatter.getsockname()[1]
        home = tmp_path / "home"
        env = env_for_children(stack, SHOPLAKE_HOME=home, **{variable: value.format(port=port)})
        result = shoplake("up", service_name, env=env)
    assert result.returncode == 1
    assert f"port {port}" in result.stderr
    assert variable in result.stderr
    if listening:  # a bound-only socket is not listed in /proc/net/tcp, a listening one is
        assert f"pid {os.getpid()}" in result.stderr
    assert not (home / "run").exists() or list((home / "run").iterdir()) == []
    assert not (home / service_name).exists(), "state was created before the port check"
