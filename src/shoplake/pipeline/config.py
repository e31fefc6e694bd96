"""The streaming jobs' resolved view of the settings: absolute table paths, checkpoints, triggers, bounds.

``conf/streaming.toml`` is validated with the other settings (:mod:`shoplake.config.streaming`); this view
resolves its relative paths against ``DELTA_BASE_PATH`` and ``SHOPLAKE_HOME`` and flattens what the queries
read, so a test or a benchmark can move one table or checkpoint with :func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shoplake.config import Settings
from shoplake.config.streaming import QUERIES
from shoplake.config.types import seconds


@dataclass(frozen=True)
class StreamingConfig:
    """What the streaming queries read, resolved from :attr:`Settings.streaming`."""

    settings: Settings = field(repr=False, compare=False)
    topics: tuple[str, ...]
    bronze_path: Path
    silver_path: Path
    quarantine_path: Path
    gold_hourly_sales_path: Path
    gold_customer_windows_path: Path
    gold_fraud_rates_path: Path
    gold_fraud_alerts_path: Path
    checkpoint_root: Path
    metrics_path: Path
    triggers: dict[str, str]
    continuous_stages: tuple[str, ...]
    starting_offsets: str
    max_offsets_per_trigger: int
    min_offsets_per_trigger: int
    max_trigger_delay_s: int
    max_records_per_partition: int
    fail_on_data_loss: bool
    max_event_age_days: int
    max_clock_skew_minutes: int
    warehouse_schema: str
    warehouse_table: str
    warehouse_driver_load_max_rows: int
    shuffle_partitions: int
    driver_memory: str
    alerts_topic: str
    scorer_max_files_per_trigger: int
    log_retention_s: int
    log_cleanup_interval_s: int
    compaction_interval_s: int
    compaction_min_file_size: str
    compaction_max_file_size: str

    @property
    def bootstrap_servers(self) -> str:
        return self.settings.kafka.bootstrap_servers

    @property
    def schema_registry_url(self) -> str:
        return self.settings.registry.url

    @property
    def postgres_dsn(self) -> str:
        return self.settings.postgres.dsn()

    def checkpoint(self, query: str) -> Path:
        """One checkpoint folder per query, so queries can be reset or moved independently."""
        if query not in QUERIES:
            raise ValueError(f"unknown query {query!r}; expected one of {QUERIES}")
        return self.checkpoint_root / query


def load_streaming_config(settings: Settings, path: Path | None = None) -> StreamingConfig:
    """The view of ``settings`` (or of them reading the streaming file ``path`` instead)."""
    if path is not None:
        settings = settings.with_env(STREAMING_CONFIG=path)
    s = settings.streaming
    lake, home = settings.lake.base_path, settings.home
    return StreamingConfig(
        settings=settings,
        topics=s.source.topics or (settings.kafka.topic,),
        bronze_path=lake / s.tables.bronze,
        silver_path=lake / s.tables.silver,
        quarantine_path=lake / s.tables.quarantine,
        gold_hourly_sales_path=lake / s.tables.gold_hourly_sales,
        gold_customer_windows_path=lake / s.tables.gold_customer_windows,
        gold_fraud_rates_path=lake / s.tables.gold_fraud_rates,
        gold_fraud_alerts_path=lake / s.tables.gold_fraud_alerts,
        checkpoint_root=home / s.paths.checkpoints,
        metrics_path=home / s.paths.progress_log,
        triggers=s.triggers.model_dump(),
        continuous_stages=s.pipeline.continuous,
        starting_offsets=s.source.starting_offsets,
        max_offsets_per_trigger=s.source.max_offsets_per_trigger,
        min_offsets_per_trigger=s.source.min_offsets_per_trigger,
        max_trigger_delay_s=s.source.max_trigger_delay_s,
        max_records_per_partition=s.source.max_records_per_partition,
        fail_on_data_loss=s.source.fail_on_data_loss,
        max_event_age_days=s.silver.max_event_age_days,
        max_clock_skew_minutes=s.silver.max_clock_skew_minutes,
        warehouse_schema=s.warehouse.table_schema,
        warehouse_table=s.warehouse.table,
        warehouse_driver_load_max_rows=s.warehouse.driver_load_max_rows,
        shuffle_partitions=s.spark.shuffle_partitions,
        driver_memory=s.spark.driver_memory,
        alerts_topic=s.scorer.alerts_topic,
        scorer_max_files_per_trigger=s.scorer.max_files_per_trigger,
        log_retention_s=seconds(s.maintenance.log_retention),
        log_cleanup_interval_s=seconds(s.maintenance.log_cleanup_interval),
        compaction_interval_s=s.maintenance.compaction_interval_s,
        compaction_min_file_size=s.maintenance.compaction_min_file_size,
        compaction_max_file_size=s.maintenance.compaction_max_file_size,
    )
