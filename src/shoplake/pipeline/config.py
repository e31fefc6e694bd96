"""The streaming jobs' configuration file (``conf/streaming.toml``), validated into :class:`StreamingConfig`.

Hosts and the Delta root are settings (env vars); the pipeline's shape - topics, triggers, table layout,
validation bounds - lives in one reviewable file that the Airflow streaming DAG checks for. Everything is
validated here, before a SparkSession starts, so a typo fails in milliseconds with the offending key named.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypedDict

from shoplake.config import Settings

QUERIES: Final = ("medallion", "gold", "scorer")
# Run when [pipeline].continuous is absent: the scorer needs a deployed model, so it is opt-in.
DEFAULT_CONTINUOUS: Final = ("medallion", "gold")
_TOPIC: Final = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_INTERVAL: Final = re.compile(r"^\d+ (second|seconds|minute|minutes|hour|hours)$")
_SIZE: Final = re.compile(r"^[1-9][0-9]*[kmg]$")
_IDENT: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_UNIT_SECONDS: Final = {"second": 1, "minute": 60, "hour": 3600}
# Below this a snapshot a reader took moments ago could lose log files it has yet to read.
MIN_LOG_RETENTION_S: Final = 600
MIN_COMPACTION_INTERVAL_S: Final = 60


class StreamingConfigError(ValueError):
    """The streaming config file is missing or invalid; the message names the file and every bad key."""


@dataclass(frozen=True)
class StreamingConfig:
    """Resolved streaming configuration: absolute paths, validated triggers and bounds."""

    topics: tuple[str, ...]
    bootstrap_servers: str
    schema_registry_url: str
    starting_offsets: str
    max_offsets_per_trigger: int
    fail_on_data_loss: bool
    bronze_path: Path
    silver_path: Path
    quarantine_path: Path
    gold_hourly_sales_path: Path
    gold_customer_windows_path: Path
    gold_fraud_rates_path: Path
    checkpoint_root: Path
    metrics_path: Path
    triggers: dict[str, str]
    max_event_age_days: int
    max_clock_skew_minutes: int
    warehouse_schema: str
    warehouse_table: str
    postgres_dsn: str = field(repr=False)  # holds the password
    shuffle_partitions: int
    reference_dir: Path
    continuous_stages: tuple[str, ...] = DEFAULT_CONTINUOUS
    # Kafka records per Spark partition of a micro-batch (Kafka's ``maxRecordsPerPartition``): bounds what
    # one task holds - the PostgreSQL load of a partition keeps its CSV until the commit - however large
    # ``max_offsets_per_trigger`` makes the batch.
    max_records_per_partition: int = 100_000
    # Continuous mode: a medallion batch waits for this many records, or at most ``max_trigger_delay_s``
    # (Kafka's ``minOffsetsPerTrigger``/``maxTriggerDelay``), so a trickle pays a batch's fixed cost less often.
    min_offsets_per_trigger: int = 1_000
    max_trigger_delay_s: int = 5
    # Valid rows of a medallion batch up to which PostgreSQL is loaded from the driver (one transaction, no
    # Python worker round trip: a fixed cost less per batch, which is what freshness is made of); above it the
    # executors load it partition by partition, so the driver's memory stays bounded. 0: always executors.
    warehouse_driver_load_max_rows: int = 50_000
    driver_memory: str = "2g"
    # The streaming fraud scorer (query "scorer"): where alerts go, and the settings naming the model.
    gold_fraud_alerts_path: Path = Path("gold/fraud_alerts")
    alerts_topic: str = "ecommerce.fraud-alerts"
    scorer_max_files_per_trigger: int = 100
    # Delta log cleanup (:mod:`shoplake.lakehouse.log_cleanup`): versions committed within this many seconds
    # always stay readable, and the continuous service cleans the logs this often.
    log_retention_s: int = 1800
    log_cleanup_interval_s: int = 300
    # Compaction of the appended tables by the continuous service (:mod:`shoplake.lakehouse.compaction`): how
    # often (0: never), the file size from which a file is left as it is, and the size of the files it writes.
    compaction_interval_s: int = 1800
    compaction_min_file_size: str = "32m"
    compaction_max_file_size: str = "128m"
    settings: Settings | None = field(default=None, repr=False, compare=False)

    def checkpoint(self, query: str) -> Path:
        """One checkpoint folder per query, so queries can be reset or moved independently."""
        if query not in QUERIES:
            raise ValueError(f"unknown query {query!r}; expected one of {QUERIES}")
        return self.checkpoint_root / query


def load_streaming_config(settings: Settings, path: Path | None = None) -> StreamingConfig:
    """Read ``path`` (default: the ``STREAMING_CONFIG`` setting) and resolve it against ``settings``."""
    file = path or settings.streaming_config
    if not file.is_file():
        raise StreamingConfigError(f"streaming config {file} not found (set STREAMING_CONFIG or restore the file)")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise StreamingConfigError(f"{file} is not valid TOML: {exc}") from exc
    return resolve(raw, settings, source=str(file))


def _topics(src: dict[str, Any], errors: list[str]) -> tuple[str, ...]:
    topics = src.get("topics", [])
    if not isinstance(topics, list) or not all(isinstance(t, str) and t for t in topics):
        errors.append(f"source.topics={topics!r}: must be a list of topic names")
        return ()
    return tuple(topics)


def seconds(interval: str) -> int:
    """Seconds of an interval such as ``"5 minutes"`` (0 for a string that is not one; validation reports it)."""
    found = _INTERVAL.match(interval)
    if found is None:
        return 0
    return int(interval.split(maxsplit=1)[0]) * _UNIT_SECONDS[found.group(1).rstrip("s")]


def size_bytes(size: str) -> int:
    """Bytes of a size such as ``"32m"`` (validated by the config: digits and one of k, m, g)."""
    unit: int = 1024 ** ("kmg".index(size[-1]) + 1)
    return int(size[:-1]) * unit


class _Upkeep(TypedDict):
    log_retention_s: int
    log_cleanup_interval_s: int
    compaction_interval_s: int
    compaction_min_file_size: str
    compaction_max_file_size: str


def _compaction_interval(sec: dict[str, Any], errors: list[str]) -> int:
    value = sec.get("compaction_interval", "30 minutes")
    if value == "off":
        return 0
    secs = seconds(value) if isinstance(value, str) else 0
    if secs < MIN_COMPACTION_INTERVAL_S:
        errors.append(
            f"maintenance.compaction_interval={value!r}: must be 'off' or an interval like '30 minutes', "
            f">= {MIN_COMPACTION_INTERVAL_S} s"
        )
        return StreamingConfig.compaction_interval_s
    return secs


def _maintenance(sec: dict[str, Any], errors: list[str]) -> _Upkeep:
    """[maintenance]: the Delta log retention, the continuous service's cleanup and compaction schedule."""
    found = []
    for key, default, minimum in (
        ("log_retention", "30 minutes", MIN_LOG_RETENTION_S),
        ("log_cleanup_interval", "5 minutes", 1),
    ):
        value = sec.get(key, default)
        secs = seconds(value) if isinstance(value, str) else 0
        if secs < minimum:
            errors.append(f"maintenance.{key}={value!r}: must be an interval like '30 minutes', >= {minimum} s")
            secs = seconds(default)
        found.append(secs)
    smallest = _size(sec, "maintenance", "compaction_min_file_size", "32m", errors)
    largest = _size(sec, "maintenance", "compaction_max_file_size", "128m", errors)
    if size_bytes(largest) < size_bytes(smallest):
        errors.append(
            f"maintenance.compaction_max_file_size={largest!r}: must be at least compaction_min_file_size={smallest!r}"
        )
    return _Upkeep(
        log_retention_s=found[0],
        log_cleanup_interval_s=found[1],
        compaction_interval_s=_compaction_interval(sec, errors),
        compaction_min_file_size=smallest,
        compaction_max_file_size=largest,
    )


def _size(sec: dict[str, Any], sec_name: str, key: str, default: str, errors: list[str]) -> str:
    value = sec.get(key, default)
    if not isinstance(value, str) or not _SIZE.match(value):
        errors.append(f"{sec_name}.{key}={value!r}: must be a size such as '64m' or '2g'")
        return default
    return value


def _stages(pipeline: dict[str, Any], errors: list[str]) -> tuple[str, ...]:
    stages = pipeline.get("continuous", list(DEFAULT_CONTINUOUS))
    if not isinstance(stages, list) or not stages or any(q not in QUERIES for q in stages):
        errors.append(f"pipeline.continuous={stages!r}: must be a non-empty list drawn from {list(QUERIES)}")
        return DEFAULT_CONTINUOUS
    return tuple(q for q in QUERIES if q in stages)


def _at_least(
    sec: dict[str, Any], sec_name: str, key: str, default: int, errors: list[str], *, minimum: int = 1
) -> int:
    value = sec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        errors.append(f"{sec_name}.{key}={value!r}: must be an integer >= {minimum}")
        return default
    return int(value)


def _trigger_floor(sec: dict[str, Any], errors: list[str]) -> tuple[int, int]:
    """[source]: the records a continuous batch waits for, and for how long at most (seconds)."""
    records = _at_least(sec, "source", "min_offsets_per_trigger", 1_000, errors)
    delay = sec.get("max_trigger_delay", "5 seconds")
    delay_s = seconds(delay) if isinstance(delay, str) else 0
    if delay_s < 1:
        errors.append(f"source.max_trigger_delay={delay!r}: must be an interval like '5 seconds', >= 1 s")
        delay_s = 5
    return records, delay_s


def _scorer(sec: dict[str, Any], errors: list[str]) -> tuple[str, int]:
    """[scorer]: the alerts topic and the silver files per scorer batch."""
    topic = sec.get("alerts_topic", "ecommerce.fraud-alerts")
    if not isinstance(topic, str) or not _TOPIC.match(topic):
        errors.append(f"scorer.alerts_topic={topic!r}: letters, digits, '.', '_' and '-' only (max 249)")
        topic = "ecommerce.fraud-alerts"
    files = sec.get("max_files_per_trigger", 100)
    if isinstance(files, bool) or not isinstance(files, int) or files < 1:
        errors.append(f"scorer.max_files_per_trigger={files!r}: must be an integer >= 1")
        files = 100
    return topic, files


def resolve(raw: dict[str, Any], settings: Settings, *, source: str = "<dict>") -> StreamingConfig:
    """Validate a parsed config mapping; every problem is reported at once."""
    errors: list[str] = []

    def section(name: str) -> dict[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            errors.append(f"[{name}] must be a table")
            return {}
        return value

    def typed(sec: dict[str, Any], sec_name: str, key: str, kind: type, default: Any) -> Any:
        value = sec.get(key, default)
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            errors.append(f"{sec_name}.{key}={value!r}: must be an integer")
            return default
        if not isinstance(value, kind):
            errors.append(f"{sec_name}.{key}={value!r}: must be a {kind.__name__}")
            return default
        return value

    src, tables, trig, silver, wh, spark, paths, pipeline, scorer, upkeep = (
        section(n)
        for n in (
            "source",
            "tables",
            "triggers",
            "silver",
            "warehouse",
            "spark",
            "paths",
            "pipeline",
            "scorer",
            "maintenance",
        )
    )
    stages = _stages(pipeline, errors)
    topics = _topics(src, errors) or (settings.kafka_topic,)
    starting = typed(src, "source", "starting_offsets", str, "earliest")
    if starting not in ("earliest", "latest"):
        errors.append(f"source.starting_offsets={starting!r}: must be earliest or latest")
    max_offsets = _at_least(src, "source", "max_offsets_per_trigger", 500_000, errors)
    per_partition = _at_least(src, "source", "max_records_per_partition", 100_000, errors)
    min_offsets, delay_s = _trigger_floor(src, errors)
    driver_load_max_rows = _at_least(wh, "warehouse", "driver_load_max_rows", 50_000, errors, minimum=0)

    def table(key: str, default: str) -> Path:
        rel: str = typed(tables, "tables", key, str, default)
        if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
            errors.append(f"tables.{key}={rel!r}: must be a relative path below DELTA_BASE_PATH")
            rel = default
        return settings.delta_base_path / rel

    def interval(sec: dict[str, Any], sec_name: str, key: str, default: str) -> str:
        value: str = typed(sec, sec_name, key, str, default)
        if not _INTERVAL.match(value):
            errors.append(f"{sec_name}.{key}={value!r}: must look like '5 seconds' or '2 hours'")
        return value

    triggers = {query: interval(trig, "triggers", query, "5 seconds") for query in QUERIES}
    schema = typed(wh, "warehouse", "schema", str, "raw")
    table_name = typed(wh, "warehouse", "table", str, "transactions")
    for key, ident in (("schema", schema), ("table", table_name)):
        if not _IDENT.match(ident):
            errors.append(f"warehouse.{key}={ident!r}: must be a lower-case SQL identifier")
    partitions = typed(spark, "spark", "shuffle_partitions", int, 4)
    if partitions < 1:
        errors.append(f"spark.shuffle_partitions={partitions}: must be >= 1")
    reference: str = typed(silver, "silver", "reference_data", str, "dbt/seeds")
    if not reference:
        errors.append("silver.reference_data must name the folder of the reference CSV files")
    age = typed(silver, "silver", "max_event_age_days", int, 3650)
    skew = typed(silver, "silver", "max_clock_skew_minutes", int, 60)
    if age < 1 or skew < 0:
        errors.append("silver.max_event_age_days must be >= 1 and silver.max_clock_skew_minutes >= 0")

    alerts_topic, scorer_files = _scorer(scorer, errors)
    config = StreamingConfig(
        topics=topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        schema_registry_url=settings.schema_registry_url,
        starting_offsets=starting,
        max_offsets_per_trigger=max_offsets,
        fail_on_data_loss=bool(typed(src, "source", "fail_on_data_loss", bool, True)),
        bronze_path=table("bronze", "bronze/transactions"),
        silver_path=table("silver", "silver/transactions"),
        quarantine_path=table("quarantine", "quarantine/transactions"),
        gold_hourly_sales_path=table("gold_hourly_sales", "gold/hourly_sales"),
        gold_customer_windows_path=table("gold_customer_windows", "gold/customer_behaviour"),
        gold_fraud_rates_path=table("gold_fraud_rates", "gold/fraud_rates"),
        checkpoint_root=settings.home / typed(paths, "paths", "checkpoints", str, "checkpoints"),
        metrics_path=settings.home / typed(paths, "paths", "progress_log", str, "streaming/progress.jsonl"),
        triggers=triggers,
        max_event_age_days=age,
        max_clock_skew_minutes=skew,
        warehouse_schema=schema,
        warehouse_table=table_name,
        postgres_dsn=settings.postgres_dsn(),
        shuffle_partitions=partitions,
        reference_dir=settings.project_dir / reference,
        continuous_stages=stages,
        max_records_per_partition=per_partition,
        min_offsets_per_trigger=min_offsets,
        max_trigger_delay_s=delay_s,
        warehouse_driver_load_max_rows=driver_load_max_rows,
        driver_memory=_size(spark, "spark", "driver_memory", "2g", errors),
        gold_fraud_alerts_path=table("gold_fraud_alerts", "gold/fraud_alerts"),
        alerts_topic=alerts_topic,
        scorer_max_files_per_trigger=scorer_files,
        **_maintenance(upkeep, errors),
        settings=settings,
    )
    if errors:
        raise StreamingConfigError(f"invalid streaming config {source}:\n  " + "\n  ".join(errors))
    return config
