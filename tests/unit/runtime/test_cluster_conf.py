"""The Spark standalone cluster's commands and the session settings that make jobs cluster-ready."""

from __future__ import annotations

import sys

import pytest

from shoplake.config import Settings, get_settings
from shoplake.runtime.session import spark_conf
from shoplake.stack import spark_cluster

pytestmark = pytest.mark.unit


@pytest.fixture
def settings() -> Settings:
    return get_settings().with_env(
        SHOPLAKE_BIND_HOST="127.0.0.1", SPARK_MASTER_PORT="17077", SPARK_MASTER_WEBUI_PORT="18090"
    )


def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_master_and_workers_bind_the_configured_address_and_ports(settings: Settings) -> None:
    master = spark_cluster.master_argv(settings)
    assert master[master.index("-cp") + 2] == "org.apache.spark.deploy.master.Master"
    assert (_option(master, "--host"), _option(master, "--port"), _option(master, "--webui-port")) == (
        "127.0.0.1",
        "17077",
        "18090",
    )
    worker = spark_cluster.worker_argv(settings, 2)
    assert _option(worker, "--host") == "127.0.0.1"
    assert _option(worker, "--webui-port") == "18092"
    assert _option(worker, "--memory") == settings.spark.worker_memory
    assert worker[-1] == spark_cluster.master_url(settings) == "spark://127.0.0.1:17077"
    assert spark_cluster.worker_names(settings.with_env(SPARK_WORKER_INSTANCES="3"))[-1] == "spark-worker-3"


def test_workers_give_executors_this_interpreter_and_the_wheel_as_spark_home(settings: Settings) -> None:
    env = spark_cluster.daemon_env(settings, {"A": "1"})
    assert env["PYSPARK_PYTHON"] == sys.executable
    assert (spark_cluster.spark_home() / "jars").is_dir()
    assert env["SPARK_HOME"] == str(spark_cluster.spark_home())
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1" and env["A"] == "1"


def test_only_spark_master_differs_between_local_and_cluster_sessions(settings: Settings) -> None:
    local = spark_conf(settings, app_name="a", shuffle_partitions=2, ui=False)
    cluster = spark_conf(
        settings.with_env(SPARK_MASTER="spark://127.0.0.1:17077"),
        app_name="a",
        shuffle_partitions=2,
        ui=False,
    )
    assert cluster["spark.master"] == "spark://127.0.0.1:17077"
    # the jars the executors need are shipped by the driver, in both modes
    assert cluster["spark.jars"] == local["spark.jars"] and "delta-spark" in cluster["spark.jars"]
    assert "spark-sql-kafka" in cluster["spark.jars"]
    # a loopback bind address keeps the driver's ports on loopback too
    assert cluster["spark.driver.bindAddress"] == cluster["spark.driver.host"] == "127.0.0.1"
    open_host = spark_conf(
        settings.with_env(SHOPLAKE_BIND_HOST="0.0.0.0"), app_name="a", shuffle_partitions=2, ui=False
    )
    assert "spark.driver.bindAddress" not in open_host
    differing = {k for k in local.keys() | cluster.keys() if local.get(k) != cluster.get(k)}
    assert differing == {"spark.master", "spark.pyspark.python"}  # a cluster's workers bring their Python
