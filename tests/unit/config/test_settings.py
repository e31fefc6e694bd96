"""Settings validation: defaults, derived values, and error messages that name every bad variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.config import ConfigError, Settings

pytestmark = pytest.mark.unit

BASE = {"SHOPLAKE_HOME": "/tmp/shoplake-config-test"}


def settings(**env: str) -> Settings:
    return Settings.from_env({**BASE, **env})


def config_error(**env: str) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, **env})
    return str(info.value)


def test_local_defaults_follow_the_dag_contract() -> None:
    s = settings()
    assert s.kafka.bootstrap_servers == "localhost:9092"
    assert (s.kafka.host, s.kafka.port, s.kafka.controller_port) == ("localhost", 9092, 9093)
    assert s.registry.url == "http://localhost:8081"
    assert s.registry.port == 8081
    assert s.mlflow.tracking_uri == "http://localhost:5002"
    assert s.mlflow.port == 5002
    assert s.postgres.port == 5432
    assert s.bind_host == "127.0.0.1"
    assert s.home == Path("/tmp/shoplake-config-test")
    assert s.logs_dir == s.home / "logs"
    assert s.mlflow.artifact_root == s.home / "mlflow" / "artifacts"


def test_ports_come_from_urls_and_bootstrap_servers() -> None:
    s = settings(
        KAFKA_BOOTSTRAP_SERVERS="localhost:39092,other:1",
        SCHEMA_REGISTRY_URL="http://localhost:38081/",
        MLFLOW_TRACKING_URI="http://127.0.0.1:35002",
    )
    assert s.kafka.port == 39092
    assert s.registry.url == "http://localhost:38081"  # trailing slash dropped
    assert s.registry.port == 38081
    assert s.mlflow.port == 35002


def test_every_invalid_variable_is_reported_at_once() -> None:
    message = config_error(
        POSTGRES_PORT="70000",
        KAFKA_CONTROLLER_PORT="abc",
        SCHEMA_REGISTRY_URL="localhost:8081",
        MLFLOW_TRACKING_URI="ftp://x",
        KAFKA_BOOTSTRAP_SERVERS="localhost",
        SHOPLAKE_PROFILE="staging",
        ML_MIN_F1="1.5",
        SHOPLAKE_SERVICE_TIMEOUT="-1",
        KAFKA_TOPIC="bad topic!",
        POSTGRES_DB="1warehouse",
    )
    for variable in (
        "POSTGRES_PORT='70000'",
        "KAFKA_CONTROLLER_PORT='abc'",
        "SCHEMA_REGISTRY_URL='localhost:8081'",
        "MLFLOW_TRACKING_URI='ftp://x'",
        "KAFKA_BOOTSTRAP_SERVERS='localhost'",
        "SHOPLAKE_PROFILE='staging'",
        "ML_MIN_F1='1.5'",
        "SHOPLAKE_SERVICE_TIMEOUT='-1'",
        "KAFKA_TOPIC='bad topic!'",
        "POSTGRES_DB='1warehouse'",
    ):
        assert variable in message
    assert message.startswith("invalid configuration:")
    assert "must be a TCP port (1-65535)" in message


@pytest.mark.parametrize("value", ["0", "65536", "-1", "8o81", ""])
def test_port_out_of_range_or_not_a_number(value: str) -> None:
    assert f"SCHEMA_REGISTRY_INTERNAL_PORT={value!r}: must be a TCP port" in config_error(
        SCHEMA_REGISTRY_INTERNAL_PORT=value
    )


def test_url_with_bad_port_is_rejected() -> None:
    assert "SCHEMA_REGISTRY_URL='http://localhost:99999': has an invalid port" in config_error(
        SCHEMA_REGISTRY_URL="http://localhost:99999"
    )


def test_production_profile_refuses_default_passwords() -> None:
    message = config_error(SHOPLAKE_PROFILE="production")
    assert "POSTGRES_PASSWORD: the production profile refuses a default or empty password" in message
    assert "AIRFLOW_ADMIN_PASSWORD: the production profile refuses" in message
    assert "***" not in message and "'postgres'" not in message  # the secret itself is never echoed
    strong = {"POSTGRES_PASSWORD": "s3cret-long", "AIRFLOW_ADMIN_PASSWORD": "x9-strong"}  # pragma: allowlist secret
    ok = settings(SHOPLAKE_PROFILE="production", **strong)
    assert ok.profile == "production"


def test_local_profile_accepts_default_passwords() -> None:
    assert settings().postgres.password.get_secret_value() == "postgres"


def test_dsn_and_sqlalchemy_url_quote_awkward_passwords() -> None:
    s = settings(POSTGRES_PASSWORD="p@ss w'rd/:")
    assert "password='p@ss w\\'rd/:'" in s.postgres.dsn("mlflow")
    assert s.postgres.dsn("mlflow").endswith("dbname=mlflow")
    quoted = "p%40ss%20w%27rd%2F%3A"
    assert s.postgres.sqlalchemy_url("mlflow") == f"postgresql+psycopg2://postgres:{quoted}@localhost:5432/mlflow"


def test_redacted_masks_secrets() -> None:
    shown = settings(POSTGRES_PASSWORD="hunter2").redacted()  # pragma: allowlist secret
    assert shown["POSTGRES_PASSWORD"] == "***"
    assert shown["POSTGRES_PORT"] == "5432"
    assert "hunter2" not in str(shown)


def test_dotenv_in_the_checkout_is_read_and_the_shell_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "conf").mkdir(parents=True)
    (checkout / "conf" / "streaming.toml").write_text("")
    (checkout / ".env").write_text("KAFKA_TOPIC=from.dotenv\nPOSTGRES_PORT=6543\n")
    monkeypatch.setenv("SHOPLAKE_PROJECT_DIR", str(checkout))
    monkeypatch.setenv("POSTGRES_PORT", "7654")
    monkeypatch.delenv("KAFKA_TOPIC", raising=False)
    settings = Settings.from_env()
    assert (settings.kafka.topic, settings.postgres.port) == ("from.dotenv", 7654)


def test_with_env_revalidates(tmp_path: Path) -> None:
    base = settings(SHOPLAKE_HOME=str(tmp_path))
    assert base.with_env(KAFKA_TOPIC="other").kafka.topic == "other"
    assert base.with_env(KAFKA_TOPIC="other").home == tmp_path
    with pytest.raises(ConfigError, match="POSTGRES_PORT='0'"):
        base.with_env(POSTGRES_PORT="0")
