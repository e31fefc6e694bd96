"""The schema registry (Apicurio + our gateway) crashes and restarts: schemas and ids survive, work goes on.

Producers carry the schema id in every message and do not need the registry once the schema is ensured,
so a run keeps producing while the registry is down. The stream's decoder must treat an unreachable
registry as "fail the batch and retry" - never as "unknown schema id", which would quarantine valid data.
After a SIGKILL and restart every subject, version, id and schema text is unchanged, and the next run
reuses the same id. Both runs - the one produced while the registry was down and the one after - then
stream through the real pipeline and dbt into silver, PostgreSQL raw and fct_transactions, every
transaction exactly once.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from shoplake.config import Settings
from shoplake.contracts.registry import ensure_schema
from shoplake.contracts.schemas import schema_dict
from shoplake.ingestion.producer import produce_encoded
from shoplake.ingestion.run import encoded_batches, ingest, validate_params
from shoplake.pipeline.silver.decode import RegistrySchemas, RegistryUnavailableError
from tests.integration import exactly_once, faults

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

N = 2_000
START = "2026-04-01T00:00:00Z"


@pytest.fixture
def settings(stack: Settings) -> Iterator[Settings]:
    with faults.private_topic(stack, "it-registry", "registry") as ours:
        yield ours
    requests.delete(f"{stack.registry.url}/subjects/{ours.schema_subject}", timeout=30)


def registry_state(settings: Settings, schema_id: int) -> dict[str, Any]:
    """What a client can see of our subject: its versions, the latest one's id and the schema by id."""
    base, subject = settings.registry.url, settings.schema_subject
    versions = requests.get(f"{base}/subjects/{subject}/versions", timeout=30)
    latest = requests.get(f"{base}/subjects/{subject}/versions/latest", timeout=30)
    by_id = requests.get(f"{base}/schemas/ids/{schema_id}", timeout=30)
    for resp in (versions, latest, by_id):
        resp.raise_for_status()
    return {
        "versions": versions.json(),
        "latest_id": latest.json()["id"],
        "schema": json.loads(by_id.json()["schema"]),
    }


def test_registry_crash_keeps_schemas_and_ids_and_producers_keep_going(settings: Settings) -> None:
    schema_id = ensure_schema(settings).schema_id
    before = registry_state(settings, schema_id)
    assert before["latest_id"] == schema_id and before["schema"] == schema_dict()
    batches = list(encoded_batches(validate_params(settings, N, 3, START, run_key="faults-registry"), schema_id))

    faults.stop(settings, "registry", signal.SIGKILL)
    produced = produce_encoded(settings, iter(batches))  # already-encoded work needs no registry
    assert produced.delivered == N and produced.failed == 0
    with pytest.raises(RegistryUnavailableError):  # the stream fails the batch (retried), never quarantines
        RegistrySchemas(settings.registry.url, timeout=5).writer_schema(schema_id)

    faults.start(settings, "registry")
    assert registry_state(settings, schema_id) == before  # nothing lost, nothing renumbered
    assert RegistrySchemas(settings.registry.url).writer_schema(schema_id) == schema_dict()
    again = ingest(settings, N, 4, START, run_key="faults-registry-after")  # ensures + verifies via the registry
    assert again.schema_id == schema_id and again.verify is not None and again.verify.ok
    assert registry_state(settings, schema_id) == before
    # the stream resolves the writer schema through the restarted registry: both runs land exactly once
    after = list(encoded_batches(validate_params(settings, N, 4, START, run_key="faults-registry-after"), schema_id))
    delivered = faults.batch_ids(batches) | faults.batch_ids(after)
    assert len(delivered) == 2 * N
    exactly_once.assert_exactly_once(faults.stream_topic(settings, settings.kafka.topic), delivered)
