"""The driver memory settings that keep the continuous service's footprint flat (issue 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shoplake.config import Settings, get_settings
from shoplake.jvm import find_java
from shoplake.pipeline.config import load_streaming_config
from shoplake.runtime import service, session
from shoplake.runtime.session import spark_conf

pytestmark = pytest.mark.unit


@pytest.fixture
def settings() -> Settings:
    return get_settings()  # its home holds the resolved Spark jars that spark_conf lists


def _java_options(conf: dict[str, str]) -> list[str]:
    return conf["spark.driver.extraJavaOptions"].split()


def test_only_the_long_running_driver_pins_and_touches_its_whole_heap(settings: Settings) -> None:
    service_conf = spark_conf(
        settings, app_name="a", shuffle_partitions=2, ui=False, driver_memory="3g", long_running=True
    )
    short_conf = spark_conf(settings, app_name="a", shuffle_partitions=2, ui=False, driver_memory="3g")
    assert service_conf["spark.driver.memory"] == short_conf["spark.driver.memory"] == "3g"  # -Xmx
    assert {"-Xms3g", "-XX:+AlwaysPreTouch"} <= set(_java_options(service_conf))
    assert not any(o.startswith(("-Xms", "-XX:+AlwaysPreTouch")) for o in _java_options(short_conf))
    for conf in (service_conf, short_conf):
        assert not any(o.startswith("-Xmx") for o in _java_options(conf))  # spark-submit rejects it there
        assert any(o.startswith("-Dderby.system.home=") for o in _java_options(conf))


def test_pinned_heap_and_arena_cap_do_not_depend_on_the_master(settings: Settings) -> None:
    def conf(master: str) -> dict[str, str]:
        return spark_conf(
            settings.with_env(SPARK_MASTER=master),
            app_name="a",
            shuffle_partitions=2,
            ui=False,
            long_running=True,
        )

    local, cluster = conf("local[*]"), conf("spark://127.0.0.1:17077")
    assert local["spark.driver.extraJavaOptions"] == cluster["spark.driver.extraJavaOptions"]
    assert local["spark.executorEnv.MALLOC_ARENA_MAX"] == cluster["spark.executorEnv.MALLOC_ARENA_MAX"] == "2"


def test_the_status_store_keeps_a_bounded_history(settings: Settings) -> None:
    conf = spark_conf(settings, app_name="a", shuffle_partitions=2, ui=False)
    for key in ("spark.ui.retainedJobs", "spark.ui.retainedStages", "spark.sql.ui.retainedExecutions"):
        assert int(conf[key]) <= 100  # Spark keeps 1,000 of each by default


class _SessionRequestedError(Exception):
    pass


def test_the_continuous_runner_asks_for_the_long_running_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings().with_env(SHOPLAKE_HOME=tmp_path / "home", DELTA_BASE_PATH=tmp_path / "delta")
    seen: list[dict[str, Any]] = []

    def fake_session(_settings: Settings, **kwargs: Any) -> None:
        seen.append(kwargs)
        raise _SessionRequestedError  # stop before a JVM would start

    monkeypatch.setattr(session, "spark_session", fake_session)
    cfg = load_streaming_config(settings)
    with pytest.raises(_SessionRequestedError):
        service.run_forever(settings, cfg)
    with pytest.raises(_SessionRequestedError):
        service.run_once(settings, cfg)
    assert [kw["long_running"] for kw in seen] == [True, False]
    assert [kw["aot_cache"] for kw in seen] == [False, True]  # only the fresh catch-up JVM uses the AOT cache
    assert seen[0]["driver_memory"] == cfg.driver_memory


def test_the_long_running_driver_unloads_classes_and_trims_its_c_heap(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    service_conf = spark_conf(settings, app_name="a", shuffle_partitions=2, ui=False, long_running=True)
    short_conf = spark_conf(settings, app_name="a", shuffle_partitions=2, ui=False)
    assert set(session.METASPACE_GC_OPTIONS) <= set(_java_options(service_conf))
    assert not set(session.METASPACE_GC_OPTIONS) & set(_java_options(short_conf))
    assert session.TRIM_NATIVE_HEAP_OPTION not in _java_options(short_conf)

    def options(accepted: bool) -> list[str]:
        monkeypatch.setattr(session, "_jvm_accepts", lambda _java, _option: accepted)
        return session.driver_java_options(Path("/s"), "2g", long_running=True).split()

    assert session.TRIM_NATIVE_HEAP_OPTION in options(True)
    assert session.TRIM_NATIVE_HEAP_OPTION not in options(False)  # an older JVM would refuse to start


def test_a_jvm_option_probe_tells_known_from_unknown_options() -> None:
    java = find_java(17)
    assert session._jvm_accepts(java, "-XX:+AlwaysPreTouch")
    assert not session._jvm_accepts(java, "-XX:ShoplakeNoSuchOption=1")
