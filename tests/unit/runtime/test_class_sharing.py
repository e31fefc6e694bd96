"""The short Spark driver's AOT cache bookkeeping (issue 4: the cold catch-up): keys, promotion, fallbacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shoplake.config import Settings, get_settings
from shoplake.jvm import Java
from shoplake.runtime import class_sharing
from shoplake.runtime.class_sharing import AotPlan, cache_key, is_complete, settle
from shoplake.runtime.session import spark_conf

pytestmark = pytest.mark.unit

MAGIC = (0xF00BABA2).to_bytes(4, "little")
KEY = "k" * 20


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def _part(folder: Path, pid: int, body: bytes, key: str = KEY, app: str = "app") -> Path:
    part = folder / f"{app}-{key}.pid{pid}.part"
    part.write_bytes(body)
    return part


def _vouched(settings: Settings, folder: Path, pid: int) -> None:
    """What a run that finished its work does (class_sharing.vouch) for its driver JVM ``pid``."""
    assert folder == class_sharing.cache_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    class_sharing.vouch(settings, pid)


def test_the_key_changes_with_any_jar_the_jdk_or_the_application(tmp_path: Path) -> None:
    jar = tmp_path / "a.jar"
    jar.write_bytes(b"x")
    base = cache_key("/usr/bin/java", (25, 0, 3), [jar], "app")
    assert cache_key("/usr/bin/java", (25, 0, 3), [jar], "app") == base
    assert cache_key("/usr/bin/java", (25, 0, 4), [jar], "app") != base
    assert cache_key("/usr/bin/java", (25, 0, 3), [jar], "other") != base
    jar.write_bytes(b"xy")  # a rebuilt jar: new size (and mtime)
    assert cache_key("/usr/bin/java", (25, 0, 3), [jar], "app") != base


def test_a_finished_vouched_part_of_an_exited_jvm_becomes_the_cache(settings: Settings) -> None:
    folder = class_sharing.cache_dir(settings)
    pid = _dead_pid()
    _vouched(settings, folder, pid)
    part = _part(folder, pid, MAGIC + b"rest")
    (folder / f"{part.name}.config").write_text("left by a killed trainer")
    older = folder / "app-oldkeyoldkeyoldkey0.aot"
    older.write_bytes(MAGIC)
    cache, training = settle(folder, "app", KEY)
    assert cache == folder / f"app-{KEY}.aot" and not training
    assert cache.read_bytes() == MAGIC + b"rest"
    # part, its config, its voucher and the old key gone
    assert sorted(p.name for p in folder.iterdir()) == [cache.name]


def test_a_part_trained_by_a_run_that_failed_is_dropped_and_trained_again(settings: Settings) -> None:
    folder = class_sharing.cache_dir(settings)
    folder.mkdir(parents=True)
    part = _part(folder, _dead_pid(), MAGIC + b"start-up code only")  # complete, but nobody vouched for it
    assert settle(folder, "app", KEY) == (None, False)
    assert not part.exists()


def test_a_voucher_waits_for_its_part_of_another_application(settings: Settings) -> None:
    folder = class_sharing.cache_dir(settings)
    pid = _dead_pid()
    _vouched(settings, folder, pid)
    other = _part(folder, pid, MAGIC + b"maintenance", app="other")
    _vouched(settings, folder, _dead_pid())  # a JVM that used a cache, did not train, and is gone
    assert settle(folder, "app", KEY) == (None, False)  # this application's start settles nothing of "other"
    assert sorted(p.name for p in folder.iterdir()) == sorted([other.name, f"pid{pid}.ok"])
    cache, _ = settle(folder, "other", KEY)
    assert cache is not None and cache.read_bytes() == MAGIC + b"maintenance"


def test_a_part_without_its_header_is_dropped_not_used(settings: Settings) -> None:
    folder = class_sharing.cache_dir(settings)
    pid = _dead_pid()
    _vouched(settings, folder, pid)
    part = _part(folder, pid, b"\0" * 64)  # HotSpot writes the header last: a killed writer's file
    assert not is_complete(part)
    assert settle(folder, "app", KEY) == (None, False)
    assert sorted(folder.iterdir()) == []


def test_a_part_whose_jvm_still_runs_means_training_elsewhere(tmp_path: Path) -> None:
    part = _part(tmp_path, os.getpid(), b"")  # the writer is alive: it writes at exit
    assert settle(tmp_path, "app", KEY) == (None, True)
    assert part.exists()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    real = get_settings()
    return real.with_env(SHOPLAKE_HOME=tmp_path / "home", SPARK_AOT_CACHE="true")


def test_the_cache_can_be_switched_off(settings: Settings) -> None:
    plan = class_sharing.plan(settings.with_env(SPARK_AOT_CACHE="false"), "app", [])
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
    monkeypatch.setattr(class_sharing, "newest_java", lambda *_: Java(str(java), (25, 0, 3)))
    first = class_sharing.plan(settings, "my app", [])
    assert first.action == "train" and first.java_home == java.parent.parent
    assert first.options == (f"-XX:AOTCacheOutput={first.cache}",) and "%p" in str(first.cache)
    assert first.cache is not None
    # what the training JVM leaves at exit, under its pid, after its run vouched for it
    pid = _dead_pid()
    class_sharing.vouch(settings, pid)
    written = Path(str(first.cache).replace("%p", f"pid{pid}"))
    written.write_bytes(MAGIC)
    second = class_sharing.plan(settings, "my app", [])
    assert second.action == "use" and second.options == (f"-XX:AOTCache={second.cache}",)
    assert second.cache is not None and second.cache.name.startswith("my_app-") and not written.exists()
    blocked = settings.with_env(SHOPLAKE_HOME=tmp_path / "a-file")
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
