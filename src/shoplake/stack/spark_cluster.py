"""A Spark standalone cluster (one master, ``SPARK_WORKER_INSTANCES`` workers) from the pyspark wheel.

It exists to run the very same streaming jobs on a distributed engine (``SPARK_MASTER=spark://...``): the
driver ships the connector jars (``spark.jars``) and Python closures to executors that are separate JVMs
and Python workers, exactly as on a real cluster, so code that only works in ``local[*]`` (driver-side
state, non-serialisable closures, jars only on the driver's classpath) fails here first. The daemons are
plain JVMs started from the wheel's ``jars/`` folder (no ``SPARK_HOME`` install, no sbin scripts, which
would daemonise away from our supervisor), bound to ``SHOPLAKE_BIND_HOST`` like every other service.

Not a core service: ``shoplake up spark`` starts it on request.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from shoplake.config import Settings
from shoplake.jvm import find_java
from shoplake.stack import process
from shoplake.stack.process import PortClaim, ProcessSpec
from shoplake.stack.service import Health, Proc, Service

NAME = "spark"
MASTER = "spark-master"
_MIN_JAVA = 17


def worker_names(settings: Settings) -> list[str]:
    return [f"spark-worker-{i}" for i in range(1, settings.spark.worker_instances + 1)]


def master_url(settings: Settings) -> str:
    """The URL to put in ``SPARK_MASTER`` to run jobs on this cluster."""
    return f"spark://{settings.bind_host}:{settings.spark.master_port}"


def spark_home() -> Path:
    """The pyspark package folder: it holds ``jars/`` and is the SPARK_HOME executors are launched from."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _java_home() -> str:
    return str(Path(find_java(_MIN_JAVA)).resolve().parents[1])


def daemon_env(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """Environment of master and workers (workers pass it on to the executors they launch)."""
    return {
        **base,
        "SPARK_HOME": str(spark_home()),
        # The wheel has jars/ but no RELEASE file: without this the launcher that builds executor commands
        # looks for a source build's directories and every executor fails to start.
        "SPARK_SCALA_VERSION": "2.13",
        "JAVA_HOME": _java_home(),
        "SPARK_LOCAL_IP": settings.bind_host,
        # Executors' Python workers run this interpreter (the venv with shoplake, fastavro, pyarrow).
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOG_DIR": str(settings.logs_dir),
        "SPARK_WORKER_DIR": str(settings.home / "spark-cluster" / "work"),
    }


def master_argv(settings: Settings) -> list[str]:
    return [
        str(Path(_java_home()) / "bin" / "java"),
        "-Xmx512m",
        "-cp",
        str(spark_home() / "jars" / "*"),
        "org.apache.spark.deploy.master.Master",
        "--host",
        settings.bind_host,
        "--port",
        str(settings.spark.master_port),
        "--webui-port",
        str(settings.spark.master_webui_port),
    ]


def worker_argv(settings: Settings, index: int) -> list[str]:
    """Worker ``index`` (1-based): its web UI on the master's UI port + index, its RPC port chosen by Spark."""
    return [
        str(Path(_java_home()) / "bin" / "java"),
        "-Xmx256m",
        "-cp",
        str(spark_home() / "jars" / "*"),
        "org.apache.spark.deploy.worker.Worker",
        "--host",
        settings.bind_host,
        "--webui-port",
        str(settings.spark.master_webui_port + index),
        "--cores",
        str(settings.spark.worker_cores),
        "--memory",
        settings.spark.worker_memory,
        "--work-dir",
        str(settings.home / "spark-cluster" / f"work-{index}"),
        master_url(settings),
    ]


def _master_state(settings: Settings) -> dict[str, object] | None:
    host = settings.bind_host if settings.bind_host not in ("0.0.0.0", "::") else "127.0.0.1"
    try:
        with urllib.request.urlopen(f"http://{host}:{settings.spark.master_webui_port}/json/", timeout=3) as resp:
            state: dict[str, object] = json.loads(resp.read())
    except (OSError, ValueError):
        return None
    return state


def alive_workers(settings: Settings) -> int:
    state = _master_state(settings)
    return int(str(state.get("aliveworkers", 0))) if state else 0


def health(settings: Settings) -> Health:
    state = _master_state(settings)
    if state is None:
        return Health(False, f"master UI on port {settings.spark.master_webui_port} does not answer")
    alive = int(str(state.get("aliveworkers", 0)))
    want = settings.spark.worker_instances
    return Health(state.get("status") == "ALIVE" and alive >= want, f"{state.get('status')}, {alive}/{want} workers")


def _registered(settings: Settings, want: int) -> Callable[[], bool]:
    """Health of a starting worker: the master counts ``want`` alive workers."""
    return lambda: alive_workers(settings) >= want


def launch(settings: Settings) -> None:
    (settings.home / "spark-cluster").mkdir(parents=True, exist_ok=True)
    env = daemon_env(settings, dict(os.environ))
    timeout = settings.service_start_timeout
    process.start(
        settings.home,
        ProcessSpec(name=MASTER, argv=master_argv(settings), env=env),
        lambda: _master_state(settings) is not None,
        timeout,
        "Spark master",
    )
    for i, name in enumerate(worker_names(settings), 1):
        if process.running_pid(settings.home, name) is None:
            spec = ProcessSpec(name=name, argv=worker_argv(settings, i), env=env)
            process.start(settings.home, spec, _registered(settings, alive_workers(settings) + 1), timeout, name)


MAX_WORKERS = 8  # the SPARK_WORKER_INSTANCES limit: ``down`` stops every worker a larger setting once started

SERVICE = Service(
    name=NAME,
    requires=(),
    processes=(Proc(MASTER), *(Proc(f"spark-worker-{i}") for i in range(1, MAX_WORKERS + 1))),  # stop: reversed
    address=master_url,
    ports=lambda s: [
        PortClaim(s.spark.master_port, "SPARK_MASTER_PORT"),
        PortClaim(s.spark.master_webui_port, "SPARK_MASTER_WEBUI_PORT"),
        *(
            PortClaim(s.spark.master_webui_port + i, "SPARK_MASTER_WEBUI_PORT")
            for i in range(1, s.spark.worker_instances + 1)
        ),
    ],
    health=health,
    launch=launch,
)
