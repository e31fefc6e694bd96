"""OpenLineage events for the pipeline's jobs: which datasets each run read and wrote, and how it ended.

Every job of the pipeline wraps its work in :func:`job_run`, which emits START, then COMPLETE or FAIL,
with the job's input and output datasets named the OpenLineage way (``kafka://host:port`` topics, ``file``
Delta paths, ``postgres://host:port`` tables, the MLflow registry's model). The transport is a JSON-lines
file under ``$SHOPLAKE_HOME/lineage/`` by default, or ``OPENLINEAGE_URL`` (e.g. Marquez) when set. Lineage
is an observer: an emission that fails is logged, never raised, so it can never fail the job it describes.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from shoplake.config import Settings
from shoplake.pipeline.config import StreamingConfig, load_streaming_config

log = logging.getLogger(__name__)

PRODUCER: Final = "https://github.com/shoplake/shoplake"
JOBS: Final = ("ingest", "stream", "dbt", "ml")

Dataset = tuple[str, str]  # (namespace, name)


def events_path(settings: Settings) -> Path:
    return settings.home / "lineage" / "events.jsonl"


def marts(settings: Settings) -> list[str]:
    """The dbt marts (one per model file in dbt/models/marts), published in the ``marts`` schema."""
    return sorted(p.stem for p in (settings.project_dir / "dbt" / "models" / "marts").glob("*.sql"))


def datasets(
    settings: Settings, job: str, cfg: StreamingConfig | None = None, stages: tuple[str, ...] | None = None
) -> tuple[list[Dataset], list[Dataset]]:
    """(inputs, outputs) of ``job``: the pipeline's lineage graph, from the same settings the jobs use.

    ``stages``: the streaming stages a ``stream`` run executes (default: the config's continuous ones).
    """
    if job not in JOBS:
        raise ValueError(f"unknown lineage job {job!r}; expected one of {JOBS}")
    cfg = cfg or load_streaming_config(settings)
    kafka = f"kafka://{cfg.bootstrap_servers.split(',')[0]}"
    pg = f"postgres://{settings.postgres.host}:{settings.postgres.port}"
    topics = [(kafka, t) for t in cfg.topics]
    delta = {
        name: ("file", str(path))
        for name, path in (
            ("bronze", cfg.bronze_path),
            ("silver", cfg.silver_path),
            ("quarantine", cfg.quarantine_path),
            ("gold_hourly_sales", cfg.gold_hourly_sales_path),
            ("gold_customer_windows", cfg.gold_customer_windows_path),
            ("gold_fraud_rates", cfg.gold_fraud_rates_path),
        )
    }
    raw = (pg, f"{settings.postgres.db}.{cfg.warehouse_schema}.{cfg.warehouse_table}")
    if job == "ingest":
        return [], topics
    if job == "stream":  # the stages the run executes: gold and the warehouse sink are optional
        run = stages or cfg.continuous_stages
        gold = [d for name, d in delta.items() if name.startswith("gold_") and "gold" in run]
        sink = [raw] if "medallion" in run else []
        return topics, [delta["bronze"], delta["silver"], delta["quarantine"], *gold, *sink]
    if job == "dbt":
        return [raw], [(pg, f"{settings.postgres.db}.marts.{m}") for m in marts(settings)]
    return [delta["silver"]], [(settings.mlflow.tracking_uri, f"models/{settings.ml.model_name}")]


@contextmanager
def job_run(
    settings: Settings, job: str, cfg: StreamingConfig | None = None, stages: tuple[str, ...] | None = None
) -> Iterator[str]:
    """Emit START before the body, COMPLETE after it, FAIL (then re-raise) if it raises; yields the run id."""
    inputs, outputs = datasets(settings, job, cfg, stages)
    run_id = str(uuid.uuid4())
    _emit(settings, "START", job, run_id, inputs=inputs, outputs=outputs)
    try:
        yield run_id
    except BaseException as exc:
        _emit(settings, "FAIL", job, run_id, inputs=inputs, outputs=outputs, error=f"{type(exc).__name__}: {exc}")
        raise
    _emit(settings, "COMPLETE", job, run_id, inputs=inputs, outputs=outputs)


def read_events(settings: Settings) -> list[dict[str, Any]]:
    """The events of the local file transport, oldest first (empty when lineage goes to a backend)."""
    path = events_path(settings)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def graph(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Latest state per job, and the dataset edges (input -> output through job) the events describe."""
    jobs: dict[str, dict[str, Any]] = {}
    for ev in events:
        jobs[ev["job"]["name"]] = {
            "state": ev["eventType"],
            "at": ev["eventTime"],
            "inputs": [f"{d['namespace']}/{d['name']}" for d in ev.get("inputs") or []],
            "outputs": [f"{d['namespace']}/{d['name']}" for d in ev.get("outputs") or []],
        }
    edges = sorted(
        {(i, name, o) for name, j in jobs.items() for i in j["inputs"] or ["(source)"] for o in j["outputs"]}
    )
    return {"jobs": jobs, "edges": [{"from": i, "job": j, "to": o} for i, j, o in edges]}


def _client(settings: Settings) -> Any:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    if settings.lineage.url:
        # Few, short retries: a job waits at most seconds for a lineage backend that is down.
        retry = {"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.2}
        config = HttpConfig.from_dict({"url": settings.lineage.url, "timeout": 5.0, "retry": retry})
        return OpenLineageClient(transport=HttpTransport(config))
    path = events_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))


def _emit(
    settings: Settings,
    state: str,
    job: str,
    run_id: str,
    *,
    inputs: list[Dataset],
    outputs: list[Dataset],
    error: str | None = None,
) -> None:
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run

    facets: dict[str, Any] = {}
    if error:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(message=error, programmingLanguage="python")
    event = RunEvent(
        eventType=RunState[state],
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=run_id, facets=facets),
        job=Job(namespace=settings.lineage.namespace, name=job),
        producer=PRODUCER,
        inputs=[InputDataset(namespace=ns, name=name) for ns, name in inputs],
        outputs=[OutputDataset(namespace=ns, name=name) for ns, name in outputs],
    )
    try:
        _client(settings).emit(event)
    except Exception as exc:  # any transport failure: lineage must never fail the job it describes
        log.error("OpenLineage %s event of %s not emitted: %s", state, job, exc)
