"""Settings for every Shoplake component, read from environment variables.

This module is the only place that knows hosts, ports, paths and thresholds. The CLI, the DAGs, the stack
and the tests all ask :func:`get_settings` instead of reading ``os.environ`` themselves, so moving from a
laptop to a cluster is a matter of setting variables, never of editing code.

Variable names follow the DAG contract (``KAFKA_BOOTSTRAP_SERVERS``, ``SCHEMA_REGISTRY_URL``,
``POSTGRES_PASSWORD``, ``MLFLOW_TRACKING_URI``, ``DELTA_BASE_PATH``); defaults are the local ones.
Invalid values fail fast with :class:`ConfigError`, naming every offending variable at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlsplit

T = TypeVar("T")

PROFILES: Final = ("local", "production")
DEFAULT_PASSWORDS: Final = frozenset({"postgres", "admin", "password", ""})


class ConfigError(ValueError):
    """Raised when one or more environment variables are invalid; the message lists each problem."""


def _project_dir() -> Path:
    """The source checkout this package runs from (holds ``jvm/``, ``dags/``, ``dbt/``)."""
    return Path(__file__).resolve().parents[2]


def _default_home() -> Path:
    # Services such as PostgreSQL refuse to run as root and are started as an unprivileged user, which
    # cannot traverse root's 0700 home directory; root therefore gets a system-wide state directory.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/shoplake")
    return Path.home() / ".shoplake"


@dataclass(frozen=True)
class Settings:
    """Every setting of the platform; build it with :meth:`from_env`."""

    profile: str
    home: Path
    project_dir: Path
    bind_host: str
    # Kafka
    kafka_bootstrap_servers: str
    kafka_controller_port: int
    kafka_topic: str
    kafka_topic_partitions: int
    kafka_replication_factor: int
    # Schema Registry (Confluent-compatible API at SCHEMA_REGISTRY_URL)
    schema_registry_url: str
    schema_registry_internal_port: int
    schema_registry_management_port: int
    registry_java_home: str
    # PostgreSQL
    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str
    postgres_db: str
    airflow_db: str
    mlflow_db: str
    postgres_bin_dir: str
    # MLflow
    mlflow_tracking_uri: str
    mlflow_artifact_root: Path
    # Delta / Spark
    delta_base_path: Path
    spark_master: str
    streaming_config: Path
    # Airflow
    airflow_home: Path
    airflow_api_port: int
    airflow_admin_user: str
    airflow_admin_password: str
    # Ingestion
    ingest_max_transactions: int
    # ML deployment gates
    ml_min_precision: float
    ml_min_recall: float
    ml_min_f1: float
    # MLflow names of the fraud model (tests use their own so they never touch the real registry entry)
    ml_experiment: str
    ml_model_name: str
    # Service start-up deadline (seconds) for health checks
    service_start_timeout: float
    # Spark standalone cluster (``shoplake up spark``; jobs use it with SPARK_MASTER=spark://host:port)
    spark_master_port: int = 7077
    spark_master_webui_port: int = 8090  # worker i serves its UI on this port + i
    spark_worker_instances: int = 2
    spark_worker_cores: int = 1
    spark_worker_memory: str = "1g"
    # Airflow alerting and monitoring (defaults keep older constructors of Settings valid)
    alert_webhook_url: str = ""  # Slack incoming webhook or any JSON webhook; empty = no posts
    alert_emails: tuple[str, ...] = ()  # recipients of Airflow's failure/retry e-mails; empty = none
    airflow_parallelism: int = 2  # concurrent task slots of the local scheduler (2 cores)
    airflow_deadline_scale: float = 1.0  # multiplies every DAG's deadline alert interval; 0 = no deadline alerts
    health_max_table_age_hours: float = 24.0  # a Delta table without a commit for longer is stale
    delta_min_free_mb: int = 512  # streaming refuses to start with less free space under its Delta/checkpoint folders
    kafka_brokers: int = 1  # local Kafka nodes (`shoplake up`); node i listens on the i-th bootstrap entry
    # Orchestrated catch-up and maintenance runs start their Spark driver from an AOT cache on a Java 25.0.3+
    # (shoplake.runtime.class_sharing); empty SPARK_AOT_JAVA_HOME = the newest such JDK found, none = no cache
    spark_aot_cache: bool = True
    spark_aot_java_home: str = ""
    # Alert channels of shoplake.monitoring.notify (each off while its setting is empty)
    pagerduty_routing_key: str = ""  # PagerDuty Events API v2 integration key; empty = no PagerDuty events
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    alert_smtp_host: str = "localhost"  # SMTP relay for ALERT_EMAILS
    alert_smtp_port: int = 25
    alert_smtp_from: str = "shoplake@localhost"
    alert_smtp_user: str = ""  # set = STARTTLS + login with ALERT_SMTP_PASSWORD
    alert_smtp_password: str = ""
    alert_dry_run: bool = False  # record alerts in $SHOPLAKE_HOME/alerts/outbox.jsonl instead of sending them
    # Health report thresholds (shoplake.monitoring.thresholds) and data-quality tolerance (shoplake.quality)
    health_small_file_mb: float = 8.0  # a Delta data file smaller than this counts as a small file
    health_max_small_file_ratio: float = 0.9  # WARN above this share of small files (tables with >= 10 files)
    health_max_kafka_lag: int = 100_000  # WARN when bronze is further behind the topic's end offsets
    health_max_quarantine_ratio: float = 0.05  # WARN when quarantine holds more than this share of bronze
    health_max_warehouse_age_hours: float = 24.0  # FAIL when raw.* got no row for longer (marts: WARN)
    dq_volume_tolerance: float = 0.01  # share of rows a layer may lack vs the one before it (duplicates, lag)
    # OpenLineage (shoplake.lineage): empty URL = JSON lines under $SHOPLAKE_HOME/lineage/
    openlineage_url: str = ""
    openlineage_namespace: str = "shoplake"

    # ---- derived values -------------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        """Alias of ``home``: every service's data and logs live below it."""
        return self.home

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def jvm_dir(self) -> Path:
        """Where resolved JVM artifacts (broker, registry, Spark connectors) are copied."""
        return self.home / "jvm"

    @property
    def kafka_port(self) -> int:
        return _port_of(self.kafka_bootstrap_servers.split(",")[0], default=9092)

    @property
    def kafka_host(self) -> str:
        return self.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)[0]

    @property
    def schema_registry_port(self) -> int:
        return urlsplit(self.schema_registry_url).port or 80

    @property
    def mlflow_port(self) -> int:
        return urlsplit(self.mlflow_tracking_uri).port or 80

    @property
    def schema_subject(self) -> str:
        """Confluent TopicNameStrategy subject for the topic's values."""
        return f"{self.kafka_topic}-value"

    def postgres_dsn(self, database: str | None = None) -> str:
        """libpq connection string (key=value form, so a password with symbols needs no URL quoting)."""
        db = database or self.postgres_db
        return (
            f"host={self.postgres_host} port={self.postgres_port} user={self.postgres_user} "
            f"password={_libpq_quote(self.postgres_password)} dbname={db}"
        )

    def sqlalchemy_url(self, database: str) -> str:
        """SQLAlchemy URL for the services that want one (MLflow, Airflow)."""
        return (
            f"postgresql+psycopg2://{quote(self.postgres_user, safe='')}:{quote(self.postgres_password, safe='')}"
            f"@{self.postgres_host}:{self.postgres_port}/{database}"
        )

    def redacted(self) -> dict[str, str]:
        """All settings as strings with secrets masked, for ``shoplake status`` and reports."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            secret = "password" in f.name or f.name == "pagerduty_routing_key"
            out[f.name] = "***" if secret and value else str(value)
        return out

    # ---- construction -----------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; raise :class:`ConfigError` listing all invalid variables."""
        e = os.environ if env is None else env
        errors: list[str] = []

        def get(name: str, default: str) -> str:
            return e.get(name, default).strip()

        def typed(name: str, default: str, parse: Callable[[str], T], check: Callable[[T], bool], hint: str) -> T:
            raw = get(name, default)
            try:
                value = parse(raw)
            except ValueError:
                errors.append(f"{name}={raw!r}: {hint}")
                return parse(default)
            if not check(value):
                errors.append(f"{name}={raw!r}: {hint}")
                return parse(default)
            return value

        def port(name: str, default: int) -> int:
            return typed(name, str(default), int, lambda p: 0 < p < 65536, "must be a TCP port (1-65535)")

        def url(name: str, default: str) -> str:
            raw = get(name, default)
            parts = urlsplit(raw)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                errors.append(f"{name}={raw!r}: must be an http(s) URL such as {default}")
                return default
            try:
                _ = parts.port
            except ValueError:
                errors.append(f"{name}={raw!r}: has an invalid port")
                return default
            return raw.rstrip("/")

        def fraction(name: str, default: str) -> float:
            return typed(name, default, float, lambda v: 0.0 <= v <= 1.0, "must be a number between 0 and 1")

        profile = get("SHOPLAKE_PROFILE", "local")
        if profile not in PROFILES:
            errors.append(f"SHOPLAKE_PROFILE={profile!r}: must be one of {', '.join(PROFILES)}")
            profile = "local"
        home = Path(get("SHOPLAKE_HOME", str(_default_home()))).expanduser()

        bootstrap = get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
        for server in bootstrap.split(","):
            host, _, p = server.strip().rpartition(":")
            if not host or not p.isdigit() or not 0 < int(p) < 65536:
                errors.append(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap!r}: expected host:port[,host:port...]")
                bootstrap = "localhost:9092"
                break

        topic = get("KAFKA_TOPIC", "ecommerce.transactions")
        if not topic or any(c not in _TOPIC_CHARS for c in topic) or len(topic) > 249:
            errors.append(f"KAFKA_TOPIC={topic!r}: letters, digits, '.', '_' and '-' only (max 249)")
            topic = "ecommerce.transactions"

        project_dir = Path(get("SHOPLAKE_PROJECT_DIR", str(_project_dir())))
        settings = cls(
            profile=profile,
            home=home,
            project_dir=project_dir,
            bind_host=get("SHOPLAKE_BIND_HOST", "127.0.0.1"),
            kafka_bootstrap_servers=bootstrap,
            kafka_controller_port=port("KAFKA_CONTROLLER_PORT", 9093),
            kafka_topic=topic,
            kafka_topic_partitions=typed(
                "KAFKA_TOPIC_PARTITIONS", "3", int, lambda v: 1 <= v <= 1000, "must be an integer 1-1000"
            ),
            kafka_replication_factor=typed(
                "KAFKA_REPLICATION_FACTOR", "1", int, lambda v: 1 <= v <= 16, "must be an integer 1-16"
            ),
            schema_registry_url=url("SCHEMA_REGISTRY_URL", "http://localhost:8081"),
            schema_registry_internal_port=port("SCHEMA_REGISTRY_INTERNAL_PORT", 8085),
            schema_registry_management_port=port("SCHEMA_REGISTRY_MANAGEMENT_PORT", 8086),
            registry_java_home=get("REGISTRY_JAVA_HOME", ""),
            postgres_host=get("POSTGRES_HOST", "localhost"),
            postgres_port=port("POSTGRES_PORT", 5432),
            postgres_user=get("POSTGRES_USER", "postgres"),
            postgres_password=e.get("POSTGRES_PASSWORD", "postgres"),
            postgres_db=get("POSTGRES_DB", "warehouse"),
            airflow_db=get("AIRFLOW_DB", "airflow"),
            mlflow_db=get("MLFLOW_DB", "mlflow"),
            postgres_bin_dir=get("POSTGRES_BIN_DIR", ""),
            mlflow_tracking_uri=url("MLFLOW_TRACKING_URI", "http://localhost:5002"),
            mlflow_artifact_root=Path(get("MLFLOW_ARTIFACT_ROOT", str(home / "mlflow" / "artifacts"))),
            delta_base_path=Path(get("DELTA_BASE_PATH", "/tmp/delta-lake")),
            spark_master=get("SPARK_MASTER", "local[*]"),
            spark_master_port=port("SPARK_MASTER_PORT", 7077),
            spark_master_webui_port=typed(
                "SPARK_MASTER_WEBUI_PORT", "8090", int, lambda p: 0 < p < 65536 - 8, "must be a TCP port (1-65527)"
            ),
            spark_worker_instances=typed(
                "SPARK_WORKER_INSTANCES", "2", int, lambda v: 1 <= v <= 8, "must be an integer 1-8"
            ),
            spark_worker_cores=typed(
                "SPARK_WORKER_CORES", "1", int, lambda v: 1 <= v <= 256, "must be an integer 1-256"
            ),
            spark_worker_memory=typed(
                "SPARK_WORKER_MEMORY",
                "1g",
                str,
                lambda v: re.fullmatch(r"[1-9][0-9]*[mg]", v) is not None,
                "must be a size such as 512m or 2g",
            ),
            streaming_config=project_dir / get("STREAMING_CONFIG", "conf/streaming.toml"),
            airflow_home=Path(get("AIRFLOW_HOME", str(home / "airflow"))),
            airflow_api_port=port("AIRFLOW_API_PORT", 8082),
            airflow_admin_user=get("AIRFLOW_ADMIN_USER", "admin"),
            airflow_admin_password=e.get("AIRFLOW_ADMIN_PASSWORD", "admin"),
            ingest_max_transactions=typed(
                "INGEST_MAX_TRANSACTIONS", "10000000", int, lambda v: v >= 1, "must be a positive integer"
            ),
            ml_min_precision=fraction("ML_MIN_PRECISION", "0.80"),
            ml_min_recall=fraction("ML_MIN_RECALL", "0.70"),
            ml_min_f1=fraction("ML_MIN_F1", "0.75"),
            ml_experiment=get("ML_EXPERIMENT", "fraud-detection"),
            ml_model_name=get("ML_MODEL_NAME", "fraud-detection-model"),
            service_start_timeout=typed(
                "SHOPLAKE_SERVICE_TIMEOUT", "180", float, lambda v: v > 0, "must be a positive number of seconds"
            ),
            alert_webhook_url=_optional_url(get("ALERT_WEBHOOK_URL", ""), "ALERT_WEBHOOK_URL", errors),
            alert_emails=_emails(get("ALERT_EMAILS", ""), errors),
            airflow_parallelism=typed(
                "AIRFLOW_PARALLELISM", "2", int, lambda v: 1 <= v <= 64, "must be an integer 1-64"
            ),
            airflow_deadline_scale=typed(
                "AIRFLOW_DEADLINE_SCALE", "1", float, lambda v: 0 <= v <= 1000, "must be a number in [0, 1000]"
            ),
            health_max_table_age_hours=typed(
                "HEALTH_MAX_TABLE_AGE_HOURS", "24", float, lambda v: v > 0, "must be a positive number of hours"
            ),
            delta_min_free_mb=typed(
                "DELTA_MIN_FREE_MB", "512", int, lambda v: v >= 0, "must be a non-negative number of MiB"
            ),
            kafka_brokers=typed(
                "KAFKA_BROKERS",
                "1",
                int,
                lambda v: 1 <= v <= min(9, len(bootstrap.split(","))),
                "must be an integer 1-9, with one KAFKA_BOOTSTRAP_SERVERS entry per local broker",
            ),
            spark_aot_cache=typed(
                "SPARK_AOT_CACHE", "true", _boolean, lambda v: True, "must be true/false (also 1/0, yes/no)"
            ),
            spark_aot_java_home=typed(
                "SPARK_AOT_JAVA_HOME",
                "",
                str,
                lambda v: not v or (Path(v) / "bin" / "java").is_file(),
                "must be a JDK folder with bin/java (Java 25.0.3+), or empty to pick one",
            ),
            pagerduty_routing_key=e.get("PAGERDUTY_ROUTING_KEY", "").strip(),
            pagerduty_events_url=url("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue"),
            alert_smtp_host=get("ALERT_SMTP_HOST", "localhost"),
            alert_smtp_port=port("ALERT_SMTP_PORT", 25),
            alert_smtp_from=get("ALERT_SMTP_FROM", "shoplake@localhost"),
            alert_smtp_user=get("ALERT_SMTP_USER", ""),
            alert_smtp_password=e.get("ALERT_SMTP_PASSWORD", ""),
            alert_dry_run=typed(
                "ALERT_DRY_RUN", "false", _boolean, lambda v: True, "must be true/false (also 1/0, yes/no)"
            ),
            health_small_file_mb=typed(
                "HEALTH_SMALL_FILE_MB", "8", float, lambda v: v > 0, "must be a positive number of MiB"
            ),
            health_max_small_file_ratio=fraction("HEALTH_MAX_SMALL_FILE_RATIO", "0.9"),
            health_max_kafka_lag=typed(
                "HEALTH_MAX_KAFKA_LAG", "100000", int, lambda v: v >= 0, "must be a non-negative integer"
            ),
            health_max_quarantine_ratio=fraction("HEALTH_MAX_QUARANTINE_RATIO", "0.05"),
            health_max_warehouse_age_hours=typed(
                "HEALTH_MAX_WAREHOUSE_AGE_HOURS", "24", float, lambda v: v > 0, "must be a positive number of hours"
            ),
            dq_volume_tolerance=fraction("DQ_VOLUME_TOLERANCE", "0.01"),
            openlineage_url=_optional_url(get("OPENLINEAGE_URL", ""), "OPENLINEAGE_URL", errors),
            openlineage_namespace=get("OPENLINEAGE_NAMESPACE", "shoplake"),
        )
        for name, value in (("ML_EXPERIMENT", settings.ml_experiment), ("ML_MODEL_NAME", settings.ml_model_name)):
            if not value or not all(c.isalnum() or c in "-_." for c in value):
                errors.append(f"{name}={value!r}: letters, digits, '-', '_' and '.' only")
        for name, value in (
            ("POSTGRES_DB", settings.postgres_db),
            ("AIRFLOW_DB", settings.airflow_db),
            ("MLFLOW_DB", settings.mlflow_db),
            ("POSTGRES_USER", settings.postgres_user),
        ):
            if not _is_identifier(value):
                errors.append(f"{name}={value!r}: must be a plain identifier (letters, digits, '_')")
        if settings.profile == "production":
            for name, secret in (
                ("POSTGRES_PASSWORD", settings.postgres_password),
                ("AIRFLOW_ADMIN_PASSWORD", settings.airflow_admin_password),
            ):
                if secret in DEFAULT_PASSWORDS:
                    errors.append(f"{name}: the production profile refuses a default or empty password")
        if errors:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
        return settings


_TOPIC_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _is_identifier(value: str) -> bool:
    return bool(value) and value[0].isalpha() and all(c.isalnum() or c == "_" for c in value) and len(value) < 64


def _optional_url(raw: str, name: str, errors: list[str]) -> str:
    """An http(s) URL or '' (feature off)."""
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        errors.append(f"{name}={raw!r}: must be empty or an http(s) URL")
        return ""
    return raw


def _emails(raw: str, errors: list[str]) -> tuple[str, ...]:
    """Comma-separated e-mail addresses (``ALERT_EMAILS``); each must look like local@domain."""
    out = tuple(a.strip() for a in raw.split(",") if a.strip())
    bad = [a for a in out if a.count("@") != 1 or not all(a.split("@")) or " " in a]
    if bad:
        errors.append(f"ALERT_EMAILS={raw!r}: not e-mail addresses: {', '.join(bad)}")
        return ()
    return out


def _boolean(raw: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case); anything else is a ValueError."""
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(raw)


def _port_of(server: str, default: int) -> int:
    _, _, p = server.strip().rpartition(":")
    return int(p) if p.isdigit() else default


def _libpq_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings.from_env()


def env_for_children(settings: Settings, **extra: Any) -> dict[str, str]:
    """Environment for subprocesses (Spark, dbt, Airflow) that must see the same settings as this process."""
    env = dict(os.environ)
    env.update(
        SHOPLAKE_HOME=str(settings.home),
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        KAFKA_TOPIC=settings.kafka_topic,
        STREAMING_CONFIG=str(settings.streaming_config),
        SCHEMA_REGISTRY_URL=settings.schema_registry_url,
        POSTGRES_HOST=settings.postgres_host,
        POSTGRES_PORT=str(settings.postgres_port),
        POSTGRES_USER=settings.postgres_user,
        POSTGRES_PASSWORD=settings.postgres_password,
        POSTGRES_DB=settings.postgres_db,
        MLFLOW_TRACKING_URI=settings.mlflow_tracking_uri,
        DELTA_BASE_PATH=str(settings.delta_base_path),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env
