"""The streaming config file: the shipped file is valid, and bad values are all reported before Spark starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.config import ConfigError, Settings
from shoplake.config.streaming import StreamingSettings
from shoplake.config.types import size_bytes
from shoplake.pipeline.config import load_streaming_config
from tests.unit.config.streaming import resolve

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"DELTA_BASE_PATH": str(tmp_path / "delta"), "SHOPLAKE_HOME": str(tmp_path / "home")})


def test_shipped_file_resolves_against_settings(settings: Settings, tmp_path: Path) -> None:
    cfg = load_streaming_config(settings)
    assert cfg.topics == (settings.kafka.topic,)
    assert cfg.bronze_path == tmp_path / "delta/bronze/transactions"
    assert cfg.checkpoint("gold") == tmp_path / "home/checkpoints/gold"
    assert cfg.triggers["medallion"].endswith("second")
    assert cfg.max_records_per_partition == 100_000
    assert cfg.warehouse_driver_load_max_rows == 50_000
    assert (cfg.log_retention_s, cfg.log_cleanup_interval_s) == (30 * 60, 5 * 60)
    assert (cfg.compaction_interval_s, size_bytes(cfg.compaction_min_file_size)) == (30 * 60, 32 * 1024 * 1024)
    assert "password" not in repr(cfg)


@pytest.mark.parametrize(
    ("maintenance", "expected"),
    [
        ({}, (1800, 300)),
        ({"log_retention": "2 hours", "log_cleanup_interval": "30 seconds"}, (7200, 30)),
        ({"log_retention": "10 minutes", "log_cleanup_interval": "1 second"}, (600, 1)),
    ],
)
def test_log_cleanup_intervals(settings: Settings, maintenance: dict[str, str], expected: tuple[int, int]) -> None:
    cfg = resolve({"maintenance": maintenance}, settings)
    assert (cfg.log_retention_s, cfg.log_cleanup_interval_s) == expected


@pytest.mark.parametrize(
    ("maintenance", "interval_s", "min_bytes"),
    [
        ({}, 1800, 32 << 20),
        ({"compaction_interval": "off"}, 0, 32 << 20),
        ({"compaction_interval": "1 minute", "compaction_min_file_size": "512k"}, 60, 512 << 10),
        (
            {"compaction_interval": "2 hours", "compaction_min_file_size": "1g", "compaction_max_file_size": "2g"},
            7200,
            1 << 30,
        ),
    ],
)
def test_compaction_schedule(settings: Settings, maintenance: dict[str, str], interval_s: int, min_bytes: int) -> None:
    cfg = resolve({"maintenance": maintenance}, settings)
    assert (cfg.compaction_interval_s, size_bytes(cfg.compaction_min_file_size)) == (interval_s, min_bytes)
    assert size_bytes(cfg.compaction_max_file_size) == (
        2 << 30 if "compaction_max_file_size" in maintenance else 128 << 20
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("log_retention", "9 minutes"),  # below the floor that protects snapshots readers are using
        ("log_retention", "soon"),
        ("log_retention", 3600),
        ("log_cleanup_interval", "0 seconds"),
        ("compaction_interval", "30 seconds"),  # below the 1-minute floor
        ("compaction_interval", "never"),
        ("compaction_interval", 0),
        ("compaction_min_file_size", "32 MB"),
        ("compaction_max_file_size", "16m"),  # below compaction_min_file_size
    ],
)
def test_bad_log_cleanup_settings_are_named(settings: Settings, key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"maintenance.{key}="):
        resolve({"maintenance": {key: value}}, settings)


def test_every_bad_value_is_named(settings: Settings) -> None:
    raw = {
        "source": {
            "topics": "not-a-list",
            "starting_offsets": "middle",
            "max_offsets_per_trigger": 0,
            "max_records_per_partition": True,
        },
        "tables": {"silver": "../escape"},
        "triggers": {"medallion": "soon"},
        "warehouse": {"schema": "Raw; DROP", "driver_load_max_rows": -1},
        "spark": {"shuffle_partitions": "four", "driver_memory": "2 GB"},
        "pipeline": {"continuous": ["bronze", "platinum"]},
    }
    with pytest.raises(ConfigError) as err:
        resolve(raw, settings)
    message = str(err.value)
    for key in (
        "source.topics",
        "source.starting_offsets",
        "source.max_offsets_per_trigger",
        "source.max_records_per_partition",
        "tables.silver",
        "triggers.medallion",
        "warehouse.schema",
        "spark.shuffle_partitions",
        "warehouse.driver_load_max_rows",
        "spark.driver_memory",
        "pipeline.continuous",
    ):
        assert key in message


def test_missing_file_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_streaming_config(settings, tmp_path / "nope.toml")


def test_unknown_query_has_no_checkpoint(settings: Settings) -> None:
    with pytest.raises(ValueError, match="unknown query"):
        load_streaming_config(settings).checkpoint("platinum")


def test_shipped_pipeline_is_the_fused_medallion_query(settings: Settings) -> None:
    cfg = load_streaming_config(settings)
    assert cfg.continuous_stages == ("medallion", "gold")
    assert cfg.triggers["medallion"] == "1 second"


def test_queries_run_in_pipeline_order(settings: Settings) -> None:
    cfg = resolve({"pipeline": {"continuous": ["scorer", "gold", "medallion"]}}, settings)
    assert cfg.continuous_stages == ("medallion", "gold", "scorer")


@pytest.mark.parametrize("staged", ["bronze", "silver", "warehouse"])
def test_the_removed_staged_queries_are_named_as_invalid(settings: Settings, staged: str) -> None:
    with pytest.raises(ConfigError, match=rf"pipeline\.continuous=\['{staged}'\]: Input should be"):
        resolve({"pipeline": {"continuous": [staged]}}, settings)


def test_a_continuous_batch_waits_for_enough_records_or_the_delay(settings: Settings) -> None:
    shipped = load_streaming_config(settings)
    assert (shipped.min_offsets_per_trigger, shipped.max_trigger_delay_s) == (1_000, 5)
    cfg = resolve({"source": {"min_offsets_per_trigger": 50, "max_trigger_delay": "1 minute"}}, settings)
    assert (cfg.min_offsets_per_trigger, cfg.max_trigger_delay_s) == (50, 60)
    with pytest.raises(ConfigError) as err:
        resolve({"source": {"min_offsets_per_trigger": 0, "max_trigger_delay": "soon"}}, settings)
    assert "source.min_offsets_per_trigger=0" in str(err.value) and "source.max_trigger_delay='soon'" in str(err.value)


def test_the_shipped_file_holds_the_models_defaults() -> None:
    """One value per setting: the file a reviewer reads and the defaults in code cannot drift apart."""
    import tomllib

    shipped = tomllib.loads((Path(__file__).resolve().parents[3] / "conf" / "streaming.toml").read_text())
    assert StreamingSettings.model_validate(shipped) == StreamingSettings()


def test_an_unknown_key_is_refused_with_its_table(settings: Settings) -> None:
    with pytest.raises(ConfigError, match=r"silver\.reference_data='dbt/seeds': Extra inputs are not permitted"):
        resolve({"silver": {"reference_data": "dbt/seeds"}}, settings)


def test_a_bad_file_fails_the_settings_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "streaming.toml"
    bad.write_text('[source]\nmax_offsets_per_trigger = 0\n[triggers]\ngold = "soon"\n')
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"STREAMING_CONFIG": str(bad), "KAFKA_TOPIC": "bad topic"})
    message = str(err.value)
    assert f"invalid streaming config {bad}:" in message
    assert "source.max_offsets_per_trigger=0" in message and "triggers.gold='soon'" in message
    assert "KAFKA_TOPIC='bad topic'" in message  # the environment's problems in the same message
