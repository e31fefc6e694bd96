"""The schema registry: Apicurio Registry (Java 21+) plus our Confluent-path gateway.

Apicurio listens on ``SCHEMA_REGISTRY_INTERNAL_PORT`` (management/health on
``SCHEMA_REGISTRY_MANAGEMENT_PORT``) and keeps its data in an H2 file database under ``{home}/registry``,
so schemas and their ids survive restarts. The gateway (:mod:`shoplake.stack.registry_gateway`) listens
on the port of ``SCHEMA_REGISTRY_URL`` so that Confluent clients work with the URL unchanged. Deletion
is enabled because the Confluent API allows it (Apicurio disables it by default).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from shoplake.config import Settings
from shoplake.jvm import artifacts_dir, find_java
from shoplake.stack import process
from shoplake.stack.process import PortClaim, ProcessSpec
from shoplake.stack.registry_gateway import CCOMPAT_PREFIX
from shoplake.stack.service import Health, Proc, Service

NAME = "registry"
GATEWAY = "registry-gateway"
HEAP = ("-Xms128m", "-Xmx512m")


def state_dir(settings: Settings) -> Path:
    return settings.home / "registry"


def registry_argv(settings: Settings, java: str, app_dir: Path) -> list[str]:
    """Apicurio's command line; Quarkus reads every setting from -D system properties."""
    props = {
        "quarkus.http.host": settings.bind_host,
        "quarkus.http.port": str(settings.registry.internal_port),
        "quarkus.management.host": settings.bind_host,
        "quarkus.management.port": str(settings.registry.management_port),
        "apicurio.storage.kind": "sql",
        "apicurio.storage.sql.kind": "h2",
        # WRITE_DELAY=0: H2 otherwise flushes a commit up to 500 ms later, so a schema registered just before
        # a crash (SIGKILL, power loss) was gone after the restart while producers already used its id.
        "apicurio.datasource.url": f"jdbc:h2:file:{state_dir(settings) / 'registry'};WRITE_DELAY=0",
        "apicurio.rest.deletion.artifact.enabled": "true",
        "apicurio.rest.deletion.artifact-version.enabled": "true",
        "apicurio.rest.deletion.group.enabled": "true",
    }
    return [java, *HEAP, *(f"-D{k}={v}" for k, v in props.items()), "-jar", str(app_dir / "quarkus-run.jar")]


def gateway_argv(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "shoplake.stack.registry_gateway",
        "--listen",
        f"{settings.bind_host}:{settings.registry.port}",
        "--upstream",
        f"{settings.bind_host}:{settings.registry.internal_port}",
    ]


def _subjects(url: str) -> Health:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            body = json.load(resp)
    except (OSError, ValueError) as exc:
        return Health(False, f"GET {url}: {exc}")
    if not isinstance(body, list):
        return Health(False, f"GET {url}: expected a JSON list, got {str(body)[:80]}")
    return Health(True, f"{len(body)} subjects")


def backend_health(settings: Settings) -> Health:
    """Apicurio itself answers the Confluent API (bypassing the gateway)."""
    host, port = settings.bind_host, settings.registry.internal_port
    if not process.port_open(host, port):
        return Health(False, f"Apicurio not listening on {host}:{port}")
    return _subjects(f"http://{host}:{port}{CCOMPAT_PREFIX}/subjects")


def health(settings: Settings) -> Health:
    """Healthy = ``GET {SCHEMA_REGISTRY_URL}/subjects`` answers 200 with a JSON list (what clients do)."""
    if not process.port_open(settings.bind_host, settings.registry.port):
        return Health(False, f"nothing listening on {settings.bind_host}:{settings.registry.port}")
    return _subjects(f"{settings.registry.url}/subjects")


def launch(settings: Settings) -> None:
    java = find_java(21, settings.registry.java_home)
    app_dir = artifacts_dir(settings, "registry")
    state = state_dir(settings)
    state.mkdir(parents=True, exist_ok=True)
    timeout = settings.service_start_timeout
    backend = ProcessSpec(name=NAME, argv=registry_argv(settings, java, app_dir), cwd=state)
    process.start(settings.home, backend, lambda: backend_health(settings).ok, timeout, "Apicurio Registry")
    gateway = ProcessSpec(name=GATEWAY, argv=gateway_argv(settings), cwd=state)
    process.start(settings.home, gateway, lambda: health(settings).ok, timeout, "registry gateway")


SERVICE = Service(
    name=NAME,
    requires=(),
    processes=(Proc(NAME), Proc(GATEWAY)),
    address=lambda s: s.registry.url,
    ports=lambda s: [
        PortClaim(s.registry.port, "SCHEMA_REGISTRY_URL"),
        PortClaim(s.registry.internal_port, "SCHEMA_REGISTRY_INTERNAL_PORT"),
        PortClaim(s.registry.management_port, "SCHEMA_REGISTRY_MANAGEMENT_PORT"),
    ],
    health=health,
    launch=launch,
)
