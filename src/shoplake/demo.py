"""``shoplake demo``: the whole platform once, orchestrated by the real Airflow scheduler.

Order: stack up (core services + Airflow) -> ``data_ingestion_pipeline`` -> streaming catch-up (Kafka ->
bronze/silver/gold/PostgreSQL raw) -> ``dbt_orchestration`` -> ``ml_pipeline_orchestration`` ->
``spark_streaming_orchestration`` (health report). DAG runs are triggered and awaited through the REST API.
The streaming catch-up is not a DAG in the contract (the streaming DAG only monitors), so the demo runs it
as ``shoplake stream run --once`` in a child process, exactly what an operator would type.

The DAGs' pause state is restored after each run: a paused DAG is unpaused only while the scheduler runs
the demo's run, so a paused local stack does not start ingesting hourly because a demo ran.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from shoplake.config import Settings, env_for_children

DAG_IDS: Final = (
    "data_ingestion_pipeline",
    "dbt_orchestration",
    "ml_pipeline_orchestration",
    "spark_streaming_orchestration",
)


class DemoError(RuntimeError):
    """A demo step failed; the message names the step and what to look at."""


@dataclass(frozen=True)
class DemoOptions:
    num_transactions: int = 5_000
    seed: int = 42
    start: str = "2026-01-05T00:00:00Z"
    span_days: float = 21.0
    run_timeout: float = 1800.0


@dataclass
class DemoSummary:
    steps: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    dbt_tests: dict[str, int] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _check_no_continuous_runner(settings: Settings) -> None:
    from shoplake.runtime import service

    runner = service.status(settings)
    if runner.running:
        # Both would write the same checkpoints; two writers on one checkpoint corrupt a query's progress.
        raise DemoError(
            f"the continuous streaming runner is active (pid {runner.pid}); the demo runs its own catch-up on "
            "the same checkpoints: stop the runner with `shoplake stream stop` and run the demo again"
        )


def _streaming_catch_up(settings: Settings) -> float:
    started = time.monotonic()
    code = "import sys; from shoplake.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, "stream", "run", "--once"],
        env=env_for_children(settings),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DemoError(f"streaming catch-up failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def warehouse_counts(settings: Settings) -> dict[str, int]:
    """Rows of raw.transactions and of every table in the dbt marts schema(s)."""
    import psycopg
    from psycopg import sql

    out: dict[str, int] = {}
    with psycopg.connect(settings.postgres.dsn(), connect_timeout=10) as conn:
        names = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where (table_schema = 'raw' and table_name = 'transactions') or table_schema like '%%marts' "
            "order by 1, 2"
        ).fetchall()
        for schema, table in names:
            row = conn.execute(
                sql.SQL("select count(*) from {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )
            out[f"{schema}.{table}"] = int(row.fetchone()[0])  # type: ignore[index]
    return out


class _Recorder:
    """Collects the summary and narrates progress as the steps finish."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.summary = DemoSummary()

    def step(self, name: str, state: str, seconds: float, **extra: Any) -> None:
        self.summary.steps.append({"step": name, "state": state, "seconds": round(seconds, 1), **extra})
        self.say(f"  {name}: {state} ({seconds:.0f} s)")

    def dag(self, client: Any, dag_id: str, conf: dict[str, Any], timeout: float) -> tuple[Any, dict[str, str | None]]:
        self.say(f"running {dag_id} ...")
        started = time.monotonic()
        run = client.trigger_and_wait(dag_id, conf, timeout)
        tasks = client.task_states(dag_id, run.run_id)
        self.step(dag_id, run.state, time.monotonic() - started, run_id=run.run_id, tasks=tasks)
        return run, tasks


def _require(run: Any, tasks: dict[str, str | None]) -> None:
    if run.state != "success":
        failed = {t: s for t, s in tasks.items() if s not in ("success", "skipped")}
        raise DemoError(f"{run.dag_id} run {run.run_id} ended {run.state}; unfinished/failed tasks: {failed}")


def _pipeline(settings: Settings, client: Any, options: DemoOptions, rec: _Recorder) -> None:
    from shoplake.ingestion.topics import ensure_topic
    from shoplake.ingestion.verify import end_offsets

    summary = rec.summary
    ensure_topic(settings)  # idempotent; a fresh stack has no topic yet, and we need its offsets before the run
    before = end_offsets(settings)
    conf = {
        "num_transactions": options.num_transactions,
        "seed": options.seed,
        "start": options.start,
        "span_days": options.span_days,
    }
    _require(*rec.dag(client, "data_ingestion_pipeline", conf, options.run_timeout))
    summary.counts["kafka_messages_added"] = sum(end_offsets(settings).values()) - sum(before.values())

    rec.say("streaming catch-up: Kafka -> bronze -> silver/quarantine -> PostgreSQL raw, gold ...")
    rec.step("streaming catch-up (shoplake stream run --once)", "success", _streaming_catch_up(settings))

    run, tasks = rec.dag(client, "dbt_orchestration", {}, options.run_timeout)
    if tasks.get("dbt_test") == "success":
        summary.dbt_tests = dict(client.xcom("dbt_orchestration", run.run_id, "dbt_test")["counts"])
    _require(run, tasks)
    summary.counts["warehouse"] = warehouse_counts(settings)

    run, tasks = rec.dag(client, "ml_pipeline_orchestration", training_window(options), options.run_timeout)
    if tasks.get("evaluate_model") == "success":
        decision = client.xcom("ml_pipeline_orchestration", run.run_id, "evaluate_model", "decision")
        summary.model = {**(decision or {}), "deploy_task": tasks.get("deploy_model")}
    _require(run, tasks)

    rec.dag(client, "spark_streaming_orchestration", {}, options.run_timeout)  # the report is written either way
    summary.health, summary.counts["delta"] = _health(settings)


def training_window(options: DemoOptions) -> dict[str, str]:
    """Train on exactly the demo's event window (other runs may have put other days into silver)."""
    from datetime import datetime, timedelta

    start = datetime.fromisoformat(options.start.replace("Z", "+00:00"))
    end = start + timedelta(days=options.span_days)
    return {"window_start": start.isoformat(), "window_end": end.isoformat()}


def _health(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    import json

    from shoplake.monitoring.report import reports_dir

    latest = reports_dir(settings) / "latest.json"
    if not latest.is_file():
        return {"path": str(latest), "healthy": False, "problems": ["no report was written"]}, {}
    report = json.loads(latest.read_text())
    rows = {t["name"]: t["rows"] for t in report["tables"]}
    return {"path": str(latest), "healthy": report["healthy"], "problems": report["problems"]}, rows


def run_demo(settings: Settings, options: DemoOptions, say: Callable[[str], None] = print) -> DemoSummary:
    from shoplake import stack
    from shoplake.airflow.rest import AirflowClient, base_url

    if options.num_transactions > settings.ingest.max_transactions:  # the DAG's Param would refuse it too late
        raise DemoError(
            f"{options.num_transactions:,} transactions exceed INGEST_MAX_TRANSACTIONS="
            f"{settings.ingest.max_transactions:,}; nothing was started"
        )
    started = time.monotonic()
    _check_no_continuous_runner(settings)  # before anything is ingested
    rec = _Recorder(say)
    say("starting the local stack (postgres, kafka, registry, mlflow, airflow) ...")
    stack.up(settings, [*stack.SERVICES, "airflow"])
    rec.step("stack up", "healthy", time.monotonic() - started)

    client = AirflowClient(settings)
    for dag_id in DAG_IDS:
        client.wait_for_dag(dag_id, timeout=settings.service_start_timeout)
    _pipeline(settings, client, options, rec)
    rec.summary.urls = {
        "airflow": base_url(settings),
        "mlflow": settings.mlflow.tracking_uri,
        "dbt docs": "shoplake warehouse docs --serve",
    }
    rec.summary.seconds = round(time.monotonic() - started, 1)
    return rec.summary


def format_summary(summary: DemoSummary) -> str:
    lines = ["", "==== Shoplake demo summary ===="]
    lines += [f"  {s['step']:<48} {s['state']:<8} {s['seconds']:>7.1f} s" for s in summary.steps]
    lines.append("counts:")
    lines.append(f"  kafka messages added: {summary.counts.get('kafka_messages_added', '?')}")
    for name, rows in (summary.counts.get("delta") or {}).items():
        lines.append(f"  delta {name}: {rows}")
    for name, rows in (summary.counts.get("warehouse") or {}).items():
        lines.append(f"  postgres {name}: {rows}")
    lines.append(f"dbt tests: {summary.dbt_tests or 'not run'}")
    if summary.model:
        m = summary.model
        tested = m.get("test_metrics", {})
        shown = ("precision", "recall", "f1", "roc_auc", "average_precision")
        metrics = ", ".join(f"{k}={tested[k]:.3f}" for k in shown if k in tested)
        lines.append(f"model version {m.get('candidate_version')}: {metrics}")
        lines.append(f"  deployed: {'yes' if m.get('deploy_task') == 'success' else 'no'} - {m.get('summary')}")
    if summary.health:
        lines.append(f"streaming health: {'healthy' if summary.health['healthy'] else 'UNHEALTHY'}")
        lines += [f"  problem: {p}" for p in summary.health["problems"]]
        lines.append(f"  report: {summary.health['path']}")
    lines += [f"{name}: {url}" for name, url in summary.urls.items()]
    lines.append(f"total: {summary.seconds:.0f} s")
    return "\n".join(lines)
