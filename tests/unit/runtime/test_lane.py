"""Lanes left by older versions: what the check finds, what ``shoplake stream reset`` moves and when it refuses.

The Spark side (a refused run writes nothing; a reset lane is rebuilt exactly once) is in
``tests/integration/test_streaming_medallion.py`` and ``test_streaming_gold.py``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoplake.cli import main
from shoplake.config import Settings, get_settings
from shoplake.pipeline.config import StreamingConfig, load_streaming_config
from shoplake.runtime import lane

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("SHOPLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DELTA_BASE_PATH", str(tmp_path / "delta"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def cfg(settings: Settings) -> StreamingConfig:
    return load_streaming_config(settings)


def _lane(cfg: StreamingConfig, *queries: str) -> None:
    """Checkpoint folders for ``queries`` and a (file-level) table folder for bronze and each gold table."""
    for query in queries:
        (cfg.checkpoint_root / query / "offsets").mkdir(parents=True)
    for table in (cfg.bronze_path, cfg.gold_hourly_sales_path):
        table.mkdir(parents=True)
        (table / "part-0.parquet").write_text("data")


def test_a_current_or_new_lane_passes(cfg: StreamingConfig) -> None:
    lane.check(cfg)
    _lane(cfg, "medallion", "gold")
    assert lane.findings(cfg) == []
    lane.check(cfg)


def test_staged_checkpoints_need_the_full_reset(cfg: StreamingConfig) -> None:
    _lane(cfg, "bronze", "silver", "medallion")
    assert [f.scope for f in lane.findings(cfg)] == ["all", "all"]
    with pytest.raises(lane.LaneError, match=r"staged query 'bronze'[\s\S]*Run `shoplake stream reset`: .* from Kafka"):
        lane.check(cfg)


def test_per_table_gold_checkpoints_need_only_the_gold_reset(cfg: StreamingConfig) -> None:
    old = cfg.checkpoint("gold") / "customer_behaviour_bitmaps"
    old.mkdir(parents=True)
    (old / "metadata").write_text("{}")
    with pytest.raises(lane.LaneError, match=r"Run `shoplake stream reset --only gold`: .* from silver"):
        lane.check(cfg)


def test_the_gold_reset_moves_only_gold(cfg: StreamingConfig, settings: Settings) -> None:
    _lane(cfg, "medallion", "gold")
    moved = lane.reset(cfg, settings.home, "gold")
    assert moved is not None
    assert sorted(str(p.relative_to(moved)) for p in moved.rglob("*") if p.is_file()) == [
        "delta/gold/hourly_sales/part-0.parquet"
    ]
    assert sorted(str(p.relative_to(moved)) for p in moved.rglob("offsets")) == ["home/checkpoints/gold/offsets"]
    assert (cfg.checkpoint("medallion") / "offsets").is_dir() and (cfg.bronze_path / "part-0.parquet").is_file()
    assert lane.reset(cfg, settings.home, "gold") is None  # nothing left to move


def test_reset_without_a_terminal_needs_yes_and_moves_nothing(
    cfg: StreamingConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _lane(cfg, "bronze", "medallion")
    monkeypatch.setattr("sys.stdin", io.StringIO("reset\n"))  # not a terminal: its answer does not count
    assert main(["stream", "reset"]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert lane.retired_items(cfg, "all") == [cfg.checkpoint_root, cfg.bronze_path, cfg.gold_hourly_sales_path]

    assert main(["stream", "reset", "--yes"]) == 0
    assert "moved to" in capsys.readouterr().out
    assert lane.retired_items(cfg, "all") == []
    assert main(["stream", "reset", "--yes"]) == 0
    assert capsys.readouterr().out.strip() == "nothing to reset"


def test_a_declined_confirmation_moves_nothing(
    cfg: StreamingConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _lane(cfg, "gold")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("no\n"))
    assert main(["stream", "reset", "--only", "gold"]) == 2
    assert "nothing was moved" in capsys.readouterr().err
    assert lane.retired_items(cfg, "gold") == [cfg.checkpoint("gold"), cfg.gold_hourly_sales_path]


def test_reset_is_refused_while_the_stream_runs(
    cfg: StreamingConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shoplake.runtime import service

    _lane(cfg, "gold")
    running = service.StreamStatus(pid=4242, running=True, last_progress={}, log=Path("stream.log"))
    monkeypatch.setattr(service, "status", lambda settings: running)
    assert main(["stream", "reset", "--yes"]) == 2
    assert "shoplake stream stop" in capsys.readouterr().err
    assert lane.retired_items(cfg, "all") == [cfg.checkpoint_root, cfg.bronze_path, cfg.gold_hourly_sales_path]
