"""The settings read from environment variables, one section per component.

Variable names are the DAG contract's (``KAFKA_BOOTSTRAP_SERVERS``, ``POSTGRES_PASSWORD``, ...): each field
names its variable, its local default and what it is for; ``.env.example`` and ``docs/configuration.md`` are
generated from these declarations (``python -m shoplake.config.reference``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from shoplake.config.types import (
    Emails,
    EnvBool,
    Fraction,
    HttpUrl,
    Identifier,
    MlflowName,
    OptionalHttpUrl,
    Port,
    Servers,
    Size,
    Topic,
    env,
)


class Section(BaseModel):
    """A group of settings; ``title`` heads its block in ``.env.example`` and the configuration reference."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True, validate_by_name=True)
    title: ClassVar[str]


class KafkaSettings(Section):
    title = "Kafka"
    bootstrap_servers: Servers = env(
        "KAFKA_BOOTSTRAP_SERVERS", "localhost:9092", "host:port[,host:port...]; one entry per local broker"
    )
    controller_port: Port = env("KAFKA_CONTROLLER_PORT", 9093, "KRaft controller listener (node i: this + i - 1)")
    brokers: int = env(
        "KAFKA_BROKERS", 1, "local Kafka nodes, at most one per bootstrap entry; 3 = KRaft cluster (docs/cluster.md)"
    )
    topic: Topic = env("KAFKA_TOPIC", "ecommerce.transactions", "the transactions topic")
    partitions: int = env("KAFKA_TOPIC_PARTITIONS", 3, "its partitions", ge=1, le=1000)
    replication_factor: int = env("KAFKA_REPLICATION_FACTOR", 1, "its replication factor", ge=1, le=16)

    @model_validator(mode="after")
    def _brokers(self) -> Self:
        if not 1 <= self.brokers <= min(9, len(self.bootstrap_servers.split(","))):
            raise ValueError("KAFKA_BROKERS: must be 1-9, with one KAFKA_BOOTSTRAP_SERVERS entry per local broker")
        return self

    @property
    def host(self) -> str:
        return self.bootstrap_servers.split(",")[0].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])

    @property
    def value_subject(self) -> str:
        """Confluent TopicNameStrategy subject of the topic's values."""
        return f"{self.topic}-value"


class RegistrySettings(Section):
    title = "Schema Registry (Confluent-compatible REST API)"
    url: HttpUrl = env(
        "SCHEMA_REGISTRY_URL", "http://localhost:8081", "Confluent-compatible API (locally: a gateway to Apicurio)"
    )
    internal_port: Port = env("SCHEMA_REGISTRY_INTERNAL_PORT", 8085, "local Apicurio's own HTTP port")
    management_port: Port = env("SCHEMA_REGISTRY_MANAGEMENT_PORT", 8086, "local Apicurio's health/metrics port")
    java_home: str = env("REGISTRY_JAVA_HOME", "", "a Java 21+ for the local registry", shown="found automatically")

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80


class PostgresSettings(Section):
    title = "PostgreSQL"
    host: str = env("POSTGRES_HOST", "localhost", "the server")
    port: Port = env("POSTGRES_PORT", 5432, "its port")
    user: Identifier = env("POSTGRES_USER", "postgres", "superuser (created by initdb locally)")
    password: SecretStr = env("POSTGRES_PASSWORD", SecretStr("postgres"), "its password")
    db: Identifier = env("POSTGRES_DB", "warehouse", "the warehouse (raw.* sources, dbt staging and marts)")
    airflow_db: Identifier = env("AIRFLOW_DB", "airflow", "Airflow's metadata database")
    mlflow_db: Identifier = env("MLFLOW_DB", "mlflow", "MLflow's tracking backend")
    bin_dir: str = env("POSTGRES_BIN_DIR", "", "folder with initdb/postgres", shown="found automatically")

    def dsn(self, database: str | None = None) -> str:
        """libpq connection string (key=value form, quoted by psycopg, so any password works)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password.get_secret_value(),
            dbname=database or self.db,
        )

    def sqlalchemy_url(self, database: str) -> str:
        """SQLAlchemy URL for the services that want one (MLflow, Airflow)."""
        user, secret = quote(self.user, safe=""), quote(self.password.get_secret_value(), safe="")
        return f"postgresql+psycopg2://{user}:{secret}@{self.host}:{self.port}/{database}"


class MlflowSettings(Section):
    title = "MLflow"
    tracking_uri: HttpUrl = env("MLFLOW_TRACKING_URI", "http://localhost:5002", "the tracking server")
    artifact_root: Path = env(
        "MLFLOW_ARTIFACT_ROOT", None, "where the local server stores artifacts", shown="$SHOPLAKE_HOME/mlflow/artifacts"
    )

    @property
    def port(self) -> int:
        return urlsplit(self.tracking_uri).port or 80


class LakeSettings(Section):
    title = "Delta Lake"
    base_path: Path = env("DELTA_BASE_PATH", Path("/tmp/delta-lake"), "root of the Delta tables")
    min_free_mb: int = env(
        "DELTA_MIN_FREE_MB",
        512,
        "streaming refuses to start with less free space (MiB) for Delta and checkpoints",
        ge=0,
    )


class SparkSettings(Section):
    title = "Spark"
    master: str = env("SPARK_MASTER", "local[*]", "spark://host:7077 on a cluster")
    master_port: Port = env("SPARK_MASTER_PORT", 7077, "`shoplake up spark`: the local standalone master")
    master_webui_port: int = env(
        "SPARK_MASTER_WEBUI_PORT", 8090, "its web UI; worker i serves its UI on this port + i", ge=1, le=65527
    )
    worker_instances: int = env("SPARK_WORKER_INSTANCES", 2, "local standalone workers", ge=1, le=8)
    worker_cores: int = env("SPARK_WORKER_CORES", 1, "cores each offers", ge=1, le=256)
    worker_memory: Size = env("SPARK_WORKER_MEMORY", "1g", "memory each worker offers to executors")
    aot_cache: EnvBool = env(
        "SPARK_AOT_CACHE", True, "catch-up and maintenance drivers start from a Java 25 AOT cache (docs/streaming.md)"
    )
    aot_java_home: str = env(
        "SPARK_AOT_JAVA_HOME", "", "the JDK (25.0.3+) they run on; none found = no cache", shown="the newest one found"
    )

    @model_validator(mode="after")
    def _aot_jdk(self) -> Self:
        if self.aot_java_home and not (Path(self.aot_java_home) / "bin" / "java").is_file():
            raise ValueError("SPARK_AOT_JAVA_HOME: must be a JDK folder with bin/java (Java 25.0.3+), or empty")
        return self


class AirflowSettings(Section):
    title = "Airflow"
    home: Path = env("AIRFLOW_HOME", None, "Airflow's home", shown="$SHOPLAKE_HOME/airflow")
    api_port: Port = env("AIRFLOW_API_PORT", 8082, "api-server and UI")
    admin_user: str = env("AIRFLOW_ADMIN_USER", "admin", "the UI/API user")
    admin_password: SecretStr = env("AIRFLOW_ADMIN_PASSWORD", SecretStr("admin"), "its password")
    parallelism: int = env("AIRFLOW_PARALLELISM", 2, "task slots of the local scheduler", ge=1, le=64)
    deadline_scale: float = env(
        "AIRFLOW_DEADLINE_SCALE", 1.0, "multiplies every DAG's deadline alert (30 min .. 8 h); 0 = none", ge=0, le=1000
    )


class AlertSettings(Section):
    title = "Alerts (each channel is off while its setting is empty)"
    webhook_url: OptionalHttpUrl = env(
        "ALERT_WEBHOOK_URL", "", "Slack incoming webhook (or any JSON webhook) for failure/retry/deadline alerts"
    )
    emails: Emails = env("ALERT_EMAILS", (), "comma-separated recipients of alert e-mails")
    smtp_host: str = env("ALERT_SMTP_HOST", "localhost", "SMTP relay for ALERT_EMAILS")
    smtp_port: Port = env("ALERT_SMTP_PORT", 25, "its port")
    smtp_from: str = env("ALERT_SMTP_FROM", "shoplake@localhost", "sender address")
    smtp_user: str = env("ALERT_SMTP_USER", "", "set: STARTTLS + login with ALERT_SMTP_PASSWORD")
    smtp_password: SecretStr = env("ALERT_SMTP_PASSWORD", SecretStr(""), "its password")
    pagerduty_routing_key: SecretStr = env(
        "PAGERDUTY_ROUTING_KEY", SecretStr(""), "PagerDuty Events API v2 integration key: failures page on-call"
    )
    pagerduty_events_url: HttpUrl = env(
        "PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue", "its endpoint"
    )
    dry_run: EnvBool = env(
        "ALERT_DRY_RUN", False, "true: write alerts to $SHOPLAKE_HOME/alerts/outbox.jsonl, send nothing"
    )


class HealthSettings(Section):
    title = "Health report and data quality (docs/operations.md#health-report-findings)"
    max_table_age_hours: float = env(
        "HEALTH_MAX_TABLE_AGE_HOURS",
        24.0,
        "a Delta table with no commit (or a query with no batch) for longer is stale: FAIL",
        gt=0,
    )
    small_file_mb: float = env("HEALTH_SMALL_FILE_MB", 8.0, "Delta data files below this size are small", gt=0)
    max_small_file_ratio: Fraction = env(
        "HEALTH_MAX_SMALL_FILE_RATIO", 0.9, "WARN when more of a table's files (tables of 10+ files) are small"
    )
    max_kafka_lag: int = env(
        "HEALTH_MAX_KAFKA_LAG", 100_000, "WARN when bronze is more records behind the topic's end offsets", ge=0
    )
    max_quarantine_ratio: Fraction = env(
        "HEALTH_MAX_QUARANTINE_RATIO", 0.05, "WARN when quarantine holds more than this share of bronze's rows"
    )
    max_warehouse_age_hours: float = env(
        "HEALTH_MAX_WAREHOUSE_AGE_HOURS", 24.0, "FAIL when raw.* received no row for longer (stale marts: WARN)", gt=0
    )
    dq_volume_tolerance: Fraction = env(
        "DQ_VOLUME_TOLERANCE", 0.01, "data quality: share of rows a layer may lack against the layer before it"
    )


class LineageSettings(Section):
    title = "OpenLineage"
    url: OptionalHttpUrl = env(
        "OPENLINEAGE_URL", "", "HTTP backend (e.g. Marquez); empty = JSON lines under $SHOPLAKE_HOME/lineage/"
    )
    namespace: str = env("OPENLINEAGE_NAMESPACE", "shoplake", "job namespace")


class IngestSettings(Section):
    title = "Ingestion"
    max_transactions: int = env(
        "INGEST_MAX_TRANSACTIONS", 10_000_000, "cap on one ingestion run (also the DAG Param's maximum)", ge=1
    )


class MlSettings(Section):
    title = "ML deployment gates and names (docs/ml.md#deployment-gates)"
    min_precision: Fraction = env("ML_MIN_PRECISION", 0.80, "precision gate")
    min_recall: Fraction = env("ML_MIN_RECALL", 0.70, "recall gate")
    min_f1: Fraction = env("ML_MIN_F1", 0.75, "F1 gate")
    experiment: MlflowName = env("ML_EXPERIMENT", "fraud-detection", "MLflow experiment of the fraud model")
    model_name: MlflowName = env("ML_MODEL_NAME", "fraud-detection-model", "its registered model")
