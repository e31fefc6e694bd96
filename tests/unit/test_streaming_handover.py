"""The staged -> medallion handover's bookkeeping: when it runs, what it records, what it refuses.

The Kafka metadata call and the staged catch-up are faked here; the real thing (Kafka, Spark, Delta,
PostgreSQL, exactly once across the handover) is ``tests/integration/test_streaming_medallion.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.streaming import handover
from shoplake.streaming.checkpoints import committed_offsets
from shoplake.streaming.config import StreamingConfig, load_streaming_config

pytestmark = pytest.mark.unit

TOPIC = "ecommerce.transactions"


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StreamingConfig:
    settings = Settings.from_env({"DELTA_BASE_PATH": str(tmp_path / "delta"), "SHOPLAKE_HOME": str(tmp_path / "home")})
    loaded = load_streaming_config(settings)
    monkeypatch.setattr(handover, "topic_partitions", lambda c: {topic: [0, 1, 2] for topic in c.topics})
    return loaded


def write_batch(checkpoint: Path, batch: int, offsets: dict[str, dict[str, int]], *, committed: bool) -> None:
    """A checkpoint batch laid out as Spark writes it: offsets/<n> (3 lines), commits/<n> once done."""
    (checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (checkpoint / "offsets" / str(batch)).write_text(f'v1\n{{"batchWatermarkMs":0}}\n{json.dumps(offsets)}\n')
    if committed:
        (checkpoint / "commits").mkdir(parents=True, exist_ok=True)
        (checkpoint / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}\n')


def test_committed_offsets_are_the_last_committed_batch_not_the_last_planned(tmp_path: Path) -> None:
    write_batch(tmp_path, 0, {TOPIC: {"0": 5, "1": 7}}, committed=True)
    write_batch(tmp_path, 1, {TOPIC: {"0": 9, "1": 9}}, committed=False)
    assert committed_offsets(tmp_path) == (0, {TOPIC: {0: 5, 1: 7}})


def test_partitions_the_staged_reader_never_saw_start_at_earliest() -> None:
    got = handover.starting_offsets({TOPIC: {0: 10, 1: 20}}, {TOPIC: [0, 1, 2], "new.topic": [0]})
    assert got == {TOPIC: {"0": 10, "1": 20, "2": -2}, "new.topic": {"0": -2}}


def test_a_fresh_lane_and_a_medallion_lane_need_no_handover(cfg: StreamingConfig) -> None:
    assert handover.take_over_from_staged(cfg, drain=lambda: pytest.fail("nothing to drain")) is cfg
    write_batch(cfg.checkpoint("medallion"), 0, {TOPIC: {"0": 1}}, committed=True)
    write_batch(cfg.checkpoint("bronze"), 0, {TOPIC: {"0": 1}}, committed=True)  # leftovers of an old run
    assert handover.take_over_from_staged(cfg, drain=lambda: pytest.fail("medallion resumes")) is cfg


def test_handover_drains_records_retires_and_starts_where_the_staged_reader_stopped(cfg: StreamingConfig) -> None:
    drained: list[bool] = []

    def drain() -> None:  # what the staged catch-up does: finish the pending batch 1
        drained.append(True)
        (cfg.checkpoint("bronze") / "commits" / "1").write_text("v1\n{}\n")

    write_batch(cfg.checkpoint("bronze"), 0, {TOPIC: {"0": 3, "1": 4, "2": 5}}, committed=True)
    write_batch(cfg.checkpoint("bronze"), 1, {TOPIC: {"0": 6, "1": 8}}, committed=False)
    (cfg.checkpoint("silver") / "offsets").mkdir(parents=True)

    moved = handover.take_over_from_staged(cfg, drain=drain)

    assert drained == [True]
    assert json.loads(moved.starting_offsets) == {TOPIC: {"0": 6, "1": 8, "2": -2}}
    record = json.loads(handover.handover_path(cfg).read_text())
    assert record["bronze_batch"] == 1
    assert not cfg.checkpoint("bronze").exists() and not cfg.checkpoint("silver").exists()
    retired = cfg.checkpoint_root / "retired" / f"staged-{record['handed_over_at']}"
    assert sorted(p.name for p in retired.iterdir()) == ["bronze", "silver"]

    # Interrupted before medallion planned a batch: the recorded offsets are reused, nothing is drained again.
    again = handover.take_over_from_staged(cfg, drain=lambda: pytest.fail("drained twice"))
    assert again.starting_offsets == moved.starting_offsets


def test_a_failed_drain_moves_nothing(cfg: StreamingConfig) -> None:
    write_batch(cfg.checkpoint("bronze"), 0, {TOPIC: {"0": 3}}, committed=True)

    def drain() -> None:
        raise RuntimeError("streaming query silver failed: boom")

    with pytest.raises(handover.HandoverError, match=r"staged queries .* failed: streaming query silver failed"):
        handover.take_over_from_staged(cfg, drain=drain)
    assert cfg.checkpoint("bronze").is_dir()
    assert not handover.handover_path(cfg).exists()


def test_the_staged_reader_is_refused_once_medallion_owns_the_lane(cfg: StreamingConfig) -> None:
    handover.refuse_staged_reader(cfg)  # a fresh lane may run the staged pipeline
    write_batch(cfg.checkpoint("bronze"), 0, {TOPIC: {"0": 3}}, committed=True)
    handover.refuse_staged_reader(cfg)  # and resume it
    handover.take_over_from_staged(cfg, drain=lambda: None)
    with pytest.raises(handover.HandoverError, match="would re-read the topics"):
        handover.refuse_staged_reader(cfg)
