"""The short Spark driver's AOT cache bookkeeping (issue 4: the cold catch-up): keys, promotion, fallbacks."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shoplake.config import Settings, get_settings
from shoplake.streaming import class_sharing
from shoplake.streaming.class_sharing import AotPlan, cache_key, is_complete, settle
from shoplake.streaming.session import spark_conf

pytestmark = pytest.mark.unit

MAGIC = (0xF00BABA2).to_bytes(4, "little")
KEY = "k" * 20


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def _part(folder: Path, pid: int, body: bytes, key: str = KEY) -> Path:
    part = folder / f"app-{key}.pid{pid}.part"
    part.write_bytes(body)
    return part


def test_the_key_changes_with_any_jar_the_jdk_or_the_application(tmp_path: Path) -> None:
    jar = tmp_path / "a.jar"
    jar.write_bytes(b"x")
    base = cache_key("/usr/bin/java", (25, 0, 3), [jar], "app")
    assert cache_key("/usr/bin/java", (25, 0, 3), [jar], "app") == base
    assert cache_key("/usr/bin/java", (25, 0, 4), [jar], "app") != base
    assert cache_key("/usr/bin/java", (25, 0, 3), [jar], "other") != base
    jar.write_bytes(b"xy")  # a rebuilt jar: new size (and mtime)
    assert cache_key("/usr/bin/java", (25, 0, 3), [jar], "app") != base


def test_a_finished_part_of_an_exited_jvm_becomes_the_cache(tmp_path: Path) -> None:
    part = _part(tmp_path, _dead_pid(), MAGIC + b"rest")
    (tmp_path / f"{part.name}.config").write_text("left by a killed trainer")
    older = tmp_path / "app-oldkeyoldkeyoldkey0.aot"
    older.write_bytes(MAGIC)
    cache, training = settle(tmp_path, "app", KEY)
    assert cache == tmp_path / f"app-{KEY}.aot" and not training
    assert cache.read_bytes() == MAGIC + b"rest"
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.name]  # part, its config and the old key gone


def test_a_part_without_its_header_is_dropped_not_used(tmp_path: Path) -> None:
    part = _part(tmp_path, _dead_pid(), b"\0" * 64)  # HotSpot writes the header last: a killed writer's file
    assert not is_complete(part)
    assert settle(tmp_path, "app", KEY) == (None, False)
    assert not part.exists()


def test_a_part_whose_jvm_still_runs_means_training_elsewhere(tmp_path: Path) -> None:
    part = _part(tmp_path, os.getpid(), b"")  # the writer is alive: it writes at exit
    assert settle(tmp_path, "app", KEY) == (None, True)
    assert part.exists()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    real = get_settings()
    return dataclasses.replace(real, home=tmp_path / "home", spark_aot_cache=True)


def test_the_cache_can_be_switched_off(settings: Settings) -> None:
    plan = class_sharing.plan(dataclasses.replace(settings, spark_aot_cache=False), "app", [])
    assert plan.action == "none" and not plan.options and plan.java_home is None


def test_without_a_recent_enough_jdk_the_driver_keeps_its_java(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(class_sharing, "newest_java", lambda *_: None)
    plan = class_sharing.plan(settings, "app", [])
    assert plan.action == "none" and plan.java_home is None and "25.0.3" in plan.reason


def test_train_then_use_then_fall_back_when_the_folder_is_unusable(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("")
    monkeypatch.setattr(class_sharing, "newest_java", lambda *_: str(java))
    monkeypatch.setattr(class_sharing, "java_release", lambda _: (25, 0, 3))
    first = class_sharing.plan(settings, "my app", [])
    assert first.action == "train" and first.java_home == java.parent.parent
    assert first.options == (f"-XX:AOTCacheOutput={first.cache}",) and "%p" in str(first.cache)
    assert first.cache is not None
    # what the training JVM leaves at exit, under its pid
    written = Path(str(first.cache).replace("%p", f"pid{_dead_pid()}"))
    written.write_bytes(MAGIC)
    second = class_sharing.plan(settings, "my app", [])
    assert second.action == "use" and second.options == (f"-XX:AOTCache={second.cache}",)
    assert second.cache is not None and second.cache.name.startswith("my_app-") and not written.exists()
    blocked = dataclasses.replace(settings, home=tmp_path / "a-file")
    blocked.home.write_text("not a folder")
    assert class_sharing.plan(blocked, "my app", []).action == "none"  # no exception: the start goes on


def test_only_a_plan_with_options_changes_the_driver() -> None:
    settings = get_settings()  # its home holds the resolved Spark jars that spark_conf lists
    use = AotPlan("use", Path("/jdk"), Path("/c.aot"), ("-XX:AOTCache=/c.aot",))
    with_cache = spark_conf(settings, app_name="a", shuffle_partitions=2, ui=False, aot=use)
    plain = spark_conf(settings, app_name="a", shuffle_partitions=2, ui=False, aot=AotPlan("none"))
    assert "-XX:AOTCache=/c.aot" in with_cache["spark.driver.extraJavaOptions"].split()
    # the cache holds only classes of the JVM's own loaders: the connector jars join the driver's class path
    assert with_cache["spark.driver.extraClassPath"].split(":") == with_cache["spark.jars"].split(",")
    assert "spark.driver.extraClassPath" not in plain
    assert (
        plain["spark.driver.extraJavaOptions"]
        == spark_conf(settings, app_name="a", shuffle_partitions=2, ui=False)["spark.driver.extraJavaOptions"]
    )
