"""The platform's settings: environment variables (and ``.env``) plus the streaming file, validated at once.

This is the only code that reads configuration. The CLI, the DAGs, the stack and the tests ask
:func:`get_settings` (or :meth:`Settings.from_env` with their own mapping), so moving from a laptop to a
cluster is a matter of setting variables, never of editing code. Precedence: the process environment, then
``<checkout>/.env``, then the defaults declared in :mod:`shoplake.config.sections`. Invalid values fail fast
with :class:`ConfigError`, naming every offending variable or key at once.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from shoplake.config.sections import (
    AirflowSettings,
    AlertSettings,
    HealthSettings,
    IngestSettings,
    KafkaSettings,
    LakeSettings,
    LineageSettings,
    MlflowSettings,
    MlSettings,
    PostgresSettings,
    RegistrySettings,
    Section,
    SparkSettings,
)
from shoplake.config.streaming import StreamingSettings
from shoplake.config.types import env, env_text

DEFAULT_PASSWORDS: Final = frozenset({"postgres", "admin", "password", ""})
ENV_FILE: Final = ".env"


class ConfigError(ValueError):
    """One or more settings are invalid; the message lists each problem."""


def _project_dir() -> Path:
    """The source checkout this package runs from (holds ``jvm/``, ``dags/``, ``dbt/``, ``conf/``)."""
    return Path(__file__).resolve().parents[3]


def _default_home() -> Path:
    # Services such as PostgreSQL refuse to run as root and are started as an unprivileged user, which
    # cannot traverse root's 0700 home directory; root therefore gets a system-wide state directory.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/shoplake")
    return Path.home() / ".shoplake"


class Settings(BaseModel):
    """Every setting of the platform; build it with :meth:`from_env`."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True, validate_by_name=True)

    profile: Literal["local", "production"] = env(
        "SHOPLAKE_PROFILE", "local", "local or production (refuses default passwords; also the dbt target)"
    )
    home: Path = env(
        "SHOPLAKE_HOME", None, "state directory: service data, logs, checkpoints, jars", shown="~/.shoplake"
    )
    project_dir: Path = env(
        "SHOPLAKE_PROJECT_DIR", None, "source checkout holding jvm/, dags/, dbt/, conf/", shown="detected"
    )
    bind_host: str = env("SHOPLAKE_BIND_HOST", "127.0.0.1", "every local service listens here only")
    service_start_timeout: float = env(
        "SHOPLAKE_SERVICE_TIMEOUT", 180.0, "seconds a service may take to become healthy", gt=0
    )
    streaming_config: Path = env(
        "STREAMING_CONFIG", Path("conf/streaming.toml"), "the streaming pipeline's shape (relative to the checkout)"
    )
    kafka: KafkaSettings
    registry: RegistrySettings
    postgres: PostgresSettings
    mlflow: MlflowSettings
    lake: LakeSettings
    spark: SparkSettings
    airflow: AirflowSettings
    alerts: AlertSettings
    health: HealthSettings
    lineage: LineageSettings
    ingest: IngestSettings
    ml: MlSettings
    streaming: StreamingSettings
    _env: dict[str, str] = PrivateAttr(default_factory=dict)

    # ---- derived values -------------------------------------------------------------------------------
    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def jvm_dir(self) -> Path:
        """Where resolved JVM artifacts (broker, registry, Spark connectors) are copied."""
        return self.home / "jvm"

    @property
    def schema_subject(self) -> str:
        return self.kafka.value_subject

    def redacted(self) -> dict[str, str]:
        """Every variable's effective value, secrets masked, for ``shoplake config`` and reports."""
        out: dict[str, str] = {}
        for owner in (self, *(getattr(self, name) for name in SECTIONS)):
            for variable, attribute, _ in variables(type(owner)):
                value = getattr(owner, attribute)
                secret = isinstance(value, SecretStr) and bool(value.get_secret_value())
                out[variable] = "***" if secret else env_text(value)
        return out

    def with_env(self, **changes: str | Path) -> Settings:
        """These settings with some variables changed, validated like the originals."""
        return Settings.from_env({**self._env, **{k: str(v) for k, v in changes.items()}})

    # ---- construction -----------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting from ``env`` (default: the process environment over ``.env``)."""
        source = dict(_process_env() if env is None else env)
        home = Path(source.get("SHOPLAKE_HOME", "").strip() or _default_home()).expanduser()
        project_dir = Path(source.get("SHOPLAKE_PROJECT_DIR", "").strip() or _project_dir())
        derived = {
            "SHOPLAKE_HOME": str(home),
            "SHOPLAKE_PROJECT_DIR": str(project_dir),
            "MLFLOW_ARTIFACT_ROOT": source.get("MLFLOW_ARTIFACT_ROOT") or str(home / "mlflow" / "artifacts"),
            "AIRFLOW_HOME": source.get("AIRFLOW_HOME") or str(home / "airflow"),
        }
        values: dict[str, Any] = {**source, **derived}
        errors: list[str] = []
        config_file = project_dir / source.get("STREAMING_CONFIG", "conf/streaming.toml").strip()
        values["STREAMING_CONFIG"] = str(config_file)
        try:
            values["streaming"] = parse_streaming(read_streaming_file(config_file), config_file)
        except ConfigError as exc:
            errors.append(str(exc))
            values["streaming"] = StreamingSettings()
        flat = dict(values)  # each section picks its own variables from the same mapping
        values.update(dict.fromkeys(SECTIONS, flat))
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            errors += _describe(exc, values)
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors)) from None
        errors += _production_checks(settings)
        if errors:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
        settings._env = {k: v for k, v in source.items() if isinstance(v, str)}
        return settings


def variables(model: type[BaseModel]) -> list[tuple[str, str, FieldInfo]]:
    """(environment variable, attribute, field) of every field of ``model`` read from the environment."""
    return [
        (field.validation_alias, name, field)
        for name, field in model.model_fields.items()
        if isinstance(field.validation_alias, str)
    ]


# The root's fields that are environment sections (the streaming file is validated from its own source).
SECTIONS: Final = tuple(
    name
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, Section)
)


def read_streaming_file(path: Path) -> dict[str, Any]:
    """The parsed streaming file; a missing or malformed file names itself and what to do."""
    if not path.is_file():
        raise ConfigError(f"STREAMING_CONFIG: {path} not found (set STREAMING_CONFIG or restore the file)")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def parse_streaming(raw: Mapping[str, Any], source: Path | str) -> StreamingSettings:
    """Validate a parsed streaming file; one line per problem under the file's name, ``table.key=value: reason``."""
    try:
        return StreamingSettings.model_validate(raw)
    except ValidationError as exc:
        lines: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            loc = [str(part) for part in error["loc"]]
            reason = str(error["msg"]).removeprefix("Value error, ")
            if len(loc) == 1:  # a check across the keys of one table names its key itself
                lines.setdefault(f"{loc[0]}.{reason}", f"{loc[0]}.{reason}")
                continue
            table = raw.get(loc[0])
            given = table.get(loc[1], error["input"]) if isinstance(table, dict) else error["input"]
            lines.setdefault(f"{loc[0]}.{loc[1]}", f"{loc[0]}.{loc[1]}={given!r}: {reason}")
        raise ConfigError(f"invalid streaming config {source}:\n  " + "\n  ".join(lines.values())) from None


def _describe(exc: ValidationError, values: Mapping[str, Any]) -> list[str]:
    """One line per problem: ``NAME='value': reason``."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        reason = str(error["msg"]).removeprefix("Value error, ")
        name = next((part for part in reversed(loc) if part.isupper()), None)
        lines.append(f"{name}={values.get(name, '')!r}: {reason}" if name else reason)
    return lines


def _production_checks(settings: Settings) -> list[str]:
    if settings.profile != "production":
        return []
    return [
        f"{name}: the production profile refuses a default or empty password"
        for name, secret in (
            ("POSTGRES_PASSWORD", settings.postgres.password),
            ("AIRFLOW_ADMIN_PASSWORD", settings.airflow.admin_password),
        )
        if secret.get_secret_value() in DEFAULT_PASSWORDS
    ]


def _process_env() -> dict[str, str]:
    """The process environment over ``<checkout>/.env`` (a variable set in the shell always wins)."""
    project_dir = Path(os.environ.get("SHOPLAKE_PROJECT_DIR", "").strip() or _project_dir())
    from_file = {k: v for k, v in dotenv_values(project_dir / ENV_FILE).items() if v is not None}
    return {**from_file, **os.environ}


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.from_env()


def env_for_children(settings: Settings, **extra: Any) -> dict[str, str]:
    """Environment for subprocesses (Spark, dbt, Airflow) that must see the same settings as this process."""
    child = dict(os.environ)
    child.update(
        SHOPLAKE_HOME=str(settings.home),
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka.bootstrap_servers,
        KAFKA_TOPIC=settings.kafka.topic,
        STREAMING_CONFIG=str(settings.streaming_config),
        SCHEMA_REGISTRY_URL=settings.registry.url,
        POSTGRES_HOST=settings.postgres.host,
        POSTGRES_PORT=str(settings.postgres.port),
        POSTGRES_USER=settings.postgres.user,
        POSTGRES_PASSWORD=settings.postgres.password.get_secret_value(),
        POSTGRES_DB=settings.postgres.db,
        MLFLOW_TRACKING_URI=settings.mlflow.tracking_uri,
        DELTA_BASE_PATH=str(settings.lake.base_path),
    )
    child.update({k: str(v) for k, v in extra.items()})
    return child
