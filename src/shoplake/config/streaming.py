"""The shape of the streaming pipeline, read from ``conf/streaming.toml`` (``STREAMING_CONFIG``).

Hosts and the Delta root are environment settings; topics, triggers, table layout and validation bounds live
in one reviewable file. The defaults below are the shipped file's values (a unit test holds them equal), and
unknown keys are refused, so a typo fails before a SparkSession starts, with the key named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from shoplake.config.types import Interval, LowerIdentifier, Size, Topic, seconds, size_bytes

QUERIES: Final = ("medallion", "gold", "scorer")
# Below this a snapshot a reader took moments ago could lose log files it has yet to read.
MIN_LOG_RETENTION_S: Final = 600
MIN_COMPACTION_INTERVAL_S: Final = 60


def _relative(value: str) -> str:
    if not value or Path(value).is_absolute() or ".." in Path(value).parts:
        raise ValueError("must be a relative path below its root")
    return value


def _in_query_order(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError(f"must be a non-empty list drawn from {list(QUERIES)}")
    return tuple(q for q in QUERIES if q in value)


RelativePath = Annotated[str, AfterValidator(_relative)]
NonEmpty = Annotated[str, Field(min_length=1)]
Query = Literal["medallion", "gold", "scorer"]


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PipelineSection(_Table):
    # The queries `shoplake stream start` keeps running; the scorer needs a deployed model, so it is opt-in.
    continuous: Annotated[tuple[Query, ...], AfterValidator(_in_query_order)] = ("medallion", "gold")


class SourceSection(_Table):
    topics: tuple[Topic, ...] = ()  # empty: the KAFKA_TOPIC setting
    starting_offsets: Literal["earliest", "latest"] = "earliest"
    max_offsets_per_trigger: StrictInt = Field(default=500_000, ge=1)
    min_offsets_per_trigger: StrictInt = Field(default=1_000, ge=1)
    max_trigger_delay: Interval = "5 seconds"
    max_records_per_partition: StrictInt = Field(default=100_000, ge=1)
    fail_on_data_loss: StrictBool = True

    @property
    def max_trigger_delay_s(self) -> int:
        return seconds(self.max_trigger_delay)


class TablesSection(_Table):
    bronze: RelativePath = "bronze/transactions"
    silver: RelativePath = "silver/transactions"
    quarantine: RelativePath = "quarantine/transactions"
    gold_hourly_sales: RelativePath = "gold/hourly_sales"
    gold_customer_windows: RelativePath = "gold/customer_behaviour"
    gold_fraud_rates: RelativePath = "gold/fraud_rates"
    gold_fraud_alerts: RelativePath = "gold/fraud_alerts"


class PathsSection(_Table):
    # Relative to SHOPLAKE_HOME; an absolute path is used as it is (a test or benchmark lane of its own).
    checkpoints: NonEmpty = "checkpoints"
    progress_log: NonEmpty = "streaming/progress.jsonl"


class TriggersSection(_Table):
    medallion: Interval = "1 second"
    gold: Interval = "2 minutes"
    scorer: Interval = "1 second"


class SilverSection(_Table):
    max_event_age_days: StrictInt = Field(default=3650, ge=1)
    # Also dbt's not_in_future test (passed as the var max_clock_skew_minutes): one bound for both layers.
    max_clock_skew_minutes: StrictInt = Field(default=43_200, ge=0)


class WarehouseSection(_Table):
    table_schema: LowerIdentifier = Field(default="raw", alias="schema")
    table: LowerIdentifier = "transactions"
    driver_load_max_rows: StrictInt = Field(default=50_000, ge=0)


class ScorerSection(_Table):
    alerts_topic: Topic = "ecommerce.fraud-alerts"
    max_files_per_trigger: StrictInt = Field(default=100, ge=1)


class SparkSection(_Table):
    shuffle_partitions: StrictInt = Field(default=4, ge=1)
    driver_memory: Size = "2g"


class MaintenanceSection(_Table):
    log_retention: Interval = "30 minutes"
    log_cleanup_interval: Interval = "5 minutes"
    compaction_interval: Interval | Literal["off"] = "30 minutes"
    compaction_min_file_size: Size = "32m"
    compaction_max_file_size: Size = "128m"

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if seconds(self.log_retention) < MIN_LOG_RETENTION_S:
            raise ValueError(f"log_retention={self.log_retention!r}: must be at least {MIN_LOG_RETENTION_S} s")
        if self.compaction_interval != "off" and seconds(self.compaction_interval) < MIN_COMPACTION_INTERVAL_S:
            raise ValueError(
                f"compaction_interval={self.compaction_interval!r}: must be 'off' or at least "
                f"{MIN_COMPACTION_INTERVAL_S} s"
            )
        if size_bytes(self.compaction_max_file_size) < size_bytes(self.compaction_min_file_size):
            raise ValueError(
                f"compaction_max_file_size={self.compaction_max_file_size!r}: must be at least "
                f"compaction_min_file_size={self.compaction_min_file_size!r}"
            )
        return self

    @property
    def compaction_interval_s(self) -> int:
        return 0 if self.compaction_interval == "off" else seconds(self.compaction_interval)


class StreamingSettings(BaseModel):
    """``conf/streaming.toml``, one attribute per ``[table]``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    pipeline: PipelineSection = PipelineSection()
    source: SourceSection = SourceSection()
    tables: TablesSection = TablesSection()
    paths: PathsSection = PathsSection()
    triggers: TriggersSection = TriggersSection()
    silver: SilverSection = SilverSection()
    warehouse: WarehouseSection = WarehouseSection()
    scorer: ScorerSection = ScorerSection()
    spark: SparkSection = SparkSection()
    maintenance: MaintenanceSection = MaintenanceSection()
