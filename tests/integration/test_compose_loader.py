"""``deploy/compose.yaml`` through the real Compose loader (compose-go, what ``docker compose`` is built on).

No Docker engine runs on these machines, so the file is never started here. ``tests/unit/test_deploy_compose.py``
checks its content against the settings with a plain YAML parse; this module checks that Compose itself
reads the file the same way: the schema validates, ``${VAR:?}`` interpolation refuses a missing secret, every
service, volume and network a service refers to exists, and the YAML anchors/merge keys give every Shoplake
service the whole settings block (a merge-key mistake would pass the plain parse and fail on a real host).
The checker is ``deploy/composecheck`` (Go), built once per session with the machine's Go toolchain.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret-for-the-loader",  # pragma: allowlist secret
    "AIRFLOW_ADMIN_PASSWORD": "admin-secret-for-the-loader",  # pragma: allowlist secret
    "AIRFLOW_API_SECRET": "api-secret-for-the-loader",  # pragma: allowlist secret
    "AIRFLOW_JWT_SECRET": "jwt-secret-for-the-loader",  # pragma: allowlist secret
}


@pytest.fixture(scope="module")
def composecheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    assert go is not None, "the Go toolchain is needed to build deploy/composecheck (install Go >= 1.26)"
    binary = tmp_path_factory.mktemp("composecheck") / "composecheck"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=ROOT / "deploy" / "composecheck", check=True, timeout=600)
    return binary


def _load(binary: Path, compose: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [str(binary), str(compose)], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def project(composecheck: Path) -> dict[str, Any]:
    done = _load(composecheck, COMPOSE, SECRETS)
    assert done.returncode == 0, done.stderr
    loaded: dict[str, Any] = json.loads(done.stdout)
    return loaded


def test_compose_accepts_the_file_with_every_service_of_the_plain_parse(project: dict[str, Any]) -> None:
    plain = yaml.safe_load(COMPOSE.read_text())
    assert set(project["services"]) == set(plain["services"])
    assert set(project["volumes"]) == set(plain["volumes"])


def test_every_shoplake_service_gets_the_whole_settings_block_with_the_secrets(project: dict[str, Any]) -> None:
    block = {k: str(v) for k, v in yaml.safe_load(COMPOSE.read_text())["x-shoplake-env"].items()}
    expected = {k: SECRETS.get(k, v) if v.startswith("${") else v for k, v in block.items()}
    ours = {name: s for name, s in project["services"].items() if s.get("image") == "shoplake:latest"}
    assert len(ours) >= 8
    for name, service in ours.items():
        env = service["environment"]
        assert {k: env.get(k) for k in expected} == expected, name


def test_published_ports_bind_loopback_only(project: dict[str, Any]) -> None:
    published = [(name, p) for name, s in project["services"].items() for p in s.get("ports") or []]
    assert published, "the Airflow UI at least is published"
    assert [(name, p.get("host_ip")) for name, p in published if p.get("host_ip") != "127.0.0.1"] == []


def test_a_missing_secret_is_refused_by_name(composecheck: Path) -> None:
    done = _load(composecheck, COMPOSE, {k: v for k, v in SECRETS.items() if k != "POSTGRES_PASSWORD"})
    assert done.returncode == 1
    assert "required variable POSTGRES_PASSWORD is missing a value" in done.stderr


def test_a_dependency_on_a_service_that_does_not_exist_is_refused(composecheck: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    doc["services"]["streaming"]["depends_on"] = ["spark-master", "no-such-service"]
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False))
    done = _load(composecheck, broken, SECRETS)
    assert done.returncode == 1
    assert "no-such-service" in done.stderr
