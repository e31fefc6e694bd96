"""The test suite's own platform: a state directory, Delta root and ports that are never the user's.

`make test` beside a running platform must neither read nor change it, and a platform left running by
the user must not make the suite fail: every service the suite starts runs in ``SHOPLAKE_TEST_HOME``
(default ``/tmp/shoplake-test-<uid>``) on the local default ports + ``SHOPLAKE_TEST_PORT_OFFSET`` (10000), and
tables live below it; two suites on one machine (a CI dry run beside a developer's) set both apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

DEFAULT_PORT_OFFSET: Final = 10_000


def suite_ports(offset: int) -> dict[str, str]:
    """Every setting that names a port of a local service, at the suite's offset."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{9092 + offset}",
        "KAFKA_CONTROLLER_PORT": str(9093 + offset),
        "SCHEMA_REGISTRY_URL": f"http://localhost:{8081 + offset}",
        "SCHEMA_REGISTRY_INTERNAL_PORT": str(8085 + offset),
        "SCHEMA_REGISTRY_MANAGEMENT_PORT": str(8086 + offset),
        "POSTGRES_PORT": str(5432 + offset),
        "MLFLOW_TRACKING_URI": f"http://localhost:{5002 + offset}",
        "AIRFLOW_API_PORT": str(8082 + offset),
        "SPARK_MASTER_PORT": str(7077 + offset),
        "SPARK_MASTER_WEBUI_PORT": str(8090 + offset),
    }


# Derived from SHOPLAKE_HOME unless set: the user's values would point into the user's platform.
DERIVED: Final = ("MLFLOW_ARTIFACT_ROOT", "AIRFLOW_HOME")


def suite_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("SHOPLAKE_TEST_HOME") or f"/tmp/shoplake-test-{os.getuid()}")


def suite_environment(user_env: Mapping[str, str]) -> dict[str, str]:
    """``user_env`` with every location and port moved to the suite's platform."""
    home = suite_home(user_env)
    env = {k: v for k, v in user_env.items() if k not in DERIVED}
    offset = int(user_env.get("SHOPLAKE_TEST_PORT_OFFSET") or DEFAULT_PORT_OFFSET)
    env.update(suite_ports(offset))
    env.update(SHOPLAKE_HOME=str(home), DELTA_BASE_PATH=str(home / "delta"), KAFKA_BROKERS="1")
    return env
