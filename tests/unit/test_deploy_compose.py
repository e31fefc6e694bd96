"""``deploy/compose.yaml`` cannot drift from the settings module.

The compose file is only documentation until someone runs it on real hosts, so nothing else would notice
a renamed variable or a moved port. Checked here: every Shoplake variable in it is one the settings
model reads; the settings block validates under the production profile; and every host:port a setting names
(Kafka bootstrap servers, registry, PostgreSQL, MLflow, Spark master, Airflow API) is a compose service
that listens on exactly that port, while the ports the services are told to use equal the settings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shoplake.config import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
_INTERPOLATION = re.compile(r"\$\{([A-Z_]+):\?[^}]*\}")
# Variables in the settings block that belong to third-party programs, not to Shoplake's settings.
FOREIGN_PREFIXES = ("AIRFLOW__", "KAFKA_NODE_ID", "MLFLOW_BACKEND_STORE_URI", "MLFLOW_SERVER_")


def _substituted(text: str) -> str:
    """``${VAR:?msg}`` -> a non-default value, as docker compose would with the variable exported."""
    return _INTERPOLATION.sub(lambda m: f"test-{m.group(1).lower()}-value", text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(_substituted(COMPOSE.read_text()))
    return doc


@pytest.fixture(scope="module")
def shoplake_env(compose: dict[str, Any]) -> dict[str, str]:
    env: dict[str, Any] = compose["x-shoplake-env"]
    return {k: str(v) for k, v in env.items()}


@pytest.fixture(scope="module")
def settings(shoplake_env: dict[str, str]) -> Settings:
    return Settings.from_env(shoplake_env)


def _read_by_config() -> set[str]:
    return set(Settings.from_env({}).redacted())


def _listens(service: dict[str, Any]) -> set[int]:
    """Container ports a service declares (``expose`` and the container side of ``ports``)."""
    ports = {int(p) for p in service.get("expose", [])}
    ports |= {int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])}
    return ports


def _option(service: dict[str, Any], flag: str) -> str:
    command = [str(c) for c in service["command"]]
    return command[command.index(flag) + 1]


def test_every_shoplake_variable_is_a_setting(shoplake_env: dict[str, str], compose: dict[str, Any]) -> None:
    read = _read_by_config()
    unknown = {k for k in shoplake_env if k not in read and not k.startswith(FOREIGN_PREFIXES)}
    assert unknown == set()
    # the settings every process needs to find the others are all given explicitly
    needed = {
        "KAFKA_BOOTSTRAP_SERVERS",
        "SCHEMA_REGISTRY_URL",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "MLFLOW_TRACKING_URI",
        "DELTA_BASE_PATH",
        "SPARK_MASTER",
        "AIRFLOW_API_PORT",
        "AIRFLOW_ADMIN_PASSWORD",
        "SHOPLAKE_PROFILE",
    }
    assert needed <= set(shoplake_env)
    # every Shoplake process gets the whole block (services built from our image)
    ours = {n: s for n, s in compose["services"].items() if s.get("image") == "shoplake:latest"}
    assert len(ours) >= 8
    for name, service in ours.items():
        env = service.get("environment", {})
        assert shoplake_env.items() <= {k: str(v) for k, v in env.items()}.items(), name


def test_settings_block_is_valid_under_the_production_profile(settings: Settings) -> None:
    assert settings.profile == "production"  # so default passwords would have been refused


def test_kafka_cluster_matches_the_bootstrap_servers(settings: Settings, compose: dict[str, Any]) -> None:
    services = compose["services"]
    servers = [s.rsplit(":", 1) for s in settings.kafka.bootstrap_servers.split(",")]
    assert len(servers) >= settings.kafka.replication_factor == 3
    for host, port in servers:
        broker = services[host]
        assert int(port) in _listens(broker)
        assert broker["environment"]["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{host}:{port}"
        assert int(broker["environment"]["KAFKA_MIN_INSYNC_REPLICAS"]) == 2
    voters = compose["x-kafka-env"]["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert sorted(v.split("@")[1].split(":")[0] for v in voters) == sorted(h for h, _ in servers)


@pytest.mark.parametrize(
    ("service", "url_of"),
    [
        ("registry", lambda s: s.registry.url),
        ("mlflow", lambda s: s.mlflow.tracking_uri),
        ("spark-master", lambda s: s.spark.master.replace("spark://", "http://")),
    ],
)
def test_urls_point_at_a_service_listening_on_that_port(
    settings: Settings, compose: dict[str, Any], service: str, url_of: Any
) -> None:
    parts = urlsplit(url_of(settings))
    assert parts.hostname == service
    assert parts.port in _listens(compose["services"][service])


def test_ports_the_services_are_told_to_use_equal_the_settings(settings: Settings, compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert settings.postgres.host == "postgres" and settings.postgres.port in _listens(services["postgres"])
    assert services["postgres"]["environment"]["POSTGRES_USER"] == settings.postgres.user
    assert int(_option(services["mlflow"], "--port")) == settings.mlflow.port
    master = services["spark-master"]
    assert int(_option(master, "--port")) == settings.spark.master_port
    assert int(_option(master, "--webui-port")) == settings.spark.master_webui_port
    workers = sorted(n for n in services if n.startswith("spark-worker-"))
    assert len(workers) == settings.spark.worker_instances
    for i, name in enumerate(workers, 1):
        worker = services[name]
        assert _option(worker, "--memory") == settings.spark.worker_memory
        assert int(_option(worker, "--cores")) == settings.spark.worker_cores
        assert int(_option(worker, "--webui-port")) == settings.spark.master_webui_port + i
        assert [str(c) for c in worker["command"]][-1] == settings.spark.master
    api = services["airflow-apiserver"]
    assert int(_option(api, "--port")) == settings.airflow.api_port
    assert settings.airflow.api_port in _listens(api)
    airflow_env = compose["x-airflow-env"]
    assert airflow_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert airflow_env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        f"http://airflow-apiserver:{settings.airflow.api_port}/execution/"
    )
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
        conn = urlsplit(airflow_env[key])
        assert (conn.hostname, conn.port, conn.username) == ("postgres", settings.postgres.port, settings.postgres.user)
        assert conn.path == f"/{settings.postgres.airflow_db}"
    assert urlsplit(airflow_env["AIRFLOW__CELERY__BROKER_URL"]).hostname in services


def test_secrets_are_required_from_the_environment_never_written_in_the_file() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())
    for name in ("POSTGRES_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"):
        assert raw["x-shoplake-env"][name].startswith(f"${{{name}:?")
    published = [p for s in raw["services"].values() for p in s.get("ports", [])]
    assert all(str(p).startswith("127.0.0.1:") for p in published)  # nothing on a public interface by default
