"""OpenLineage events of the package's jobs: START/COMPLETE/FAIL with every dataset, to the file transport."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake import lineage
from shoplake.config import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {"SHOPLAKE_HOME": str(tmp_path / "home"), "DELTA_BASE_PATH": str(tmp_path / "d"), "POSTGRES_PORT": "15432"}
    )


@pytest.mark.unit
def test_the_jobs_form_the_pipeline_graph(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    (_, topics) = lineage.datasets(settings, "ingest")
    stream_in, stream_out = lineage.datasets(settings, "stream")
    dbt_in, dbt_out = lineage.datasets(settings, "dbt")
    ml_in, ml_out = lineage.datasets(settings, "ml")
    assert topics == stream_in == [("kafka://localhost:9092", "ecommerce.transactions")]
    assert ("file", str(tmp_path / "d" / "silver/transactions")) in stream_out
    assert dbt_in == [("postgres://localhost:15432", "warehouse.raw.transactions")] and dbt_in[0] in stream_out
    assert ("postgres://localhost:15432", "warehouse.marts.fct_transactions") in dbt_out
    assert ml_in[0] in stream_out and ml_out == [("http://localhost:5002", "models/fraud-detection-model")]
    with pytest.raises(ValueError, match="unknown lineage job"):
        lineage.datasets(settings, "nope")


@pytest.mark.unit
def test_a_run_emits_start_then_complete_or_fail_with_its_datasets(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with lineage.job_run(settings, "stream") as ok_run:
        pass
    with pytest.raises(RuntimeError, match="boom"), lineage.job_run(settings, "dbt") as failed_run:
        raise RuntimeError("boom")
    events = lineage.read_events(settings)
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("stream", "START"),
        ("stream", "COMPLETE"),
        ("dbt", "START"),
        ("dbt", "FAIL"),
    ]
    assert {e["run"]["runId"] for e in events[:2]} == {ok_run} and events[3]["run"]["runId"] == failed_run
    assert events[3]["run"]["facets"]["errorMessage"]["message"] == "RuntimeError: boom"
    inputs, outputs = lineage.datasets(settings, "stream")
    assert [(d["namespace"], d["name"]) for d in events[1]["outputs"]] == outputs
    assert [(d["namespace"], d["name"]) for d in events[1]["inputs"]] == inputs
    edges = lineage.graph(events)["edges"]
    assert {e["to"] for e in edges} >= {f"{ns}/{name}" for ns, name in outputs}


@pytest.mark.unit
def test_an_unreachable_backend_never_fails_the_job(tmp_path: Path) -> None:
    settings = Settings.from_env({"SHOPLAKE_HOME": str(tmp_path), "OPENLINEAGE_URL": "http://127.0.0.1:9"})
    with lineage.job_run(settings, "ingest"):
        pass
    assert lineage.read_events(settings) == []  # events went to the (dead) HTTP backend, not the file
