"""The ``shoplake`` command line: one entry point for people, CI and the Airflow DAGs' helpers.

Each command is a thin wrapper over a package function (the same function a DAG task calls), so the CLI
adds argument parsing and exit codes, never logic. Configuration errors and missing dependencies exit
with code 2 and a one-paragraph explanation instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from shoplake.cli_args import MAX_ML_SEED, MAX_SEED, PORT, int_in, iso_instant, iso_instant_with_zone, number_in
from shoplake.config import ConfigError, Settings, get_settings
from shoplake.jvm import MissingDependencyError
from shoplake.runtime.lane import LaneError
from shoplake.runtime.storage import StorageError
from shoplake.warehouse import dbt_runner

Handler = Callable[[argparse.Namespace, Settings], int]


def _cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    """Print the effective settings (secrets masked)."""
    print(json.dumps(settings.redacted(), indent=2))
    return 0


# ---- local stack: up / down / status / logs (shoplake.stack) --------------------------------------------
def _stack_names(args: argparse.Namespace) -> list[str] | None:
    """The SERVICE arguments, validated (ValueError listing the valid names), or None for the default."""
    from shoplake.stack import control

    return control.validate(args.services) if args.services else None


def _cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    """Start services (default: the core stack) and their dependencies; no-op for healthy ones."""
    from shoplake import stack
    from shoplake.stack import control

    try:
        names = _stack_names(args)
        stack.up(settings, names)
    except ValueError as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 2
    except MissingDependencyError:
        raise  # main() explains it and exits 2
    except RuntimeError as exc:  # ServiceError, or Maven failing to resolve the JVM artifacts
        print(f"shoplake: {exc}", file=sys.stderr)
        return 1
    wanted = set(names or stack.SERVICES)
    print(control.format_table([r for r in stack.status(settings) if r.name in wanted or r.healthy]))
    return 0


def _cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop services (default: all) in reverse start order."""
    from shoplake import stack

    try:
        stack.down(settings, _stack_names(args))
    except ValueError as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 2
    except MissingDependencyError:
        raise  # main() explains it and exits 2
    except RuntimeError as exc:  # ServiceError, or Maven failing to resolve the JVM artifacts
        print(f"shoplake: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """Health of every service; exit 1 when a requested one is unhealthy (default: core or running ones)."""
    from dataclasses import asdict

    from shoplake import stack
    from shoplake.stack import control

    try:
        names = _stack_names(args)
    except ValueError as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 2
    rows = [r for r in stack.status(settings) if names is None or r.name in names]
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(control.format_table(rows))
    return 0 if all(r.healthy for r in control.must_be_healthy(rows, names, stack.SERVICES)) else 1


def _cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    """Print the last lines of a service's log files."""
    from shoplake.stack import control, process

    try:
        paths = control.log_paths(settings, args.service)
    except ValueError as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 2
    # Only the logs that exist (Kafka lists a process per possible cluster node), unless there are none yet.
    paths = [path for path in paths if path.is_file()] or paths
    for path in paths:
        if len(paths) > 1:
            print(f"==> {path} <==")
        print(process.tail(path, args.lines) if path.is_file() else f"(no log yet at {path})")
    return 0


def _add_stack_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("up", help="start local services (default: postgres kafka registry mlflow)")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(handler=_cmd_up)
    p = sub.add_parser("down", help="stop local services (default: all)")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(handler=_cmd_down)
    p = sub.add_parser("status", help="health of the local services; exit 1 if one is unhealthy")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_cmd_status)
    p = sub.add_parser("logs", help="last lines of a service's log")
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("-n", "--lines", type=int_in(1, 100_000), default=50, help="number of lines (default 50)")
    p.set_defaults(handler=_cmd_logs)


# ---- end of local stack block ----------------------------------------------------------------------------


# ---- streaming block -----------------------------------------------------------------------------
def _cmd_stream_run(args: argparse.Namespace, settings: Settings) -> int:
    """Catch-up (--once) or continuous streaming in the foreground."""
    from shoplake.runtime import service

    queries = tuple(args.query) if args.query else None
    if args.once:
        print(json.dumps(service.run_once(settings, queries=queries), indent=2))
    else:
        service.run_forever(settings, queries=queries)
    return 0


def _cmd_stream_start(args: argparse.Namespace, settings: Settings) -> int:
    from shoplake.runtime import service

    pid = service.start_background(settings)
    print(f"streaming running (pid {pid}); log: {settings.home / 'logs' / 'stream.log'}")
    return 0


def _cmd_stream_stop(args: argparse.Namespace, settings: Settings) -> int:
    from shoplake.runtime import service

    print("streaming stopped" if service.stop_background(settings) else "streaming was not running")
    return 0


def _cmd_stream_status(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when the supervised runner is alive, 1 otherwise; prints the last progress of each query."""
    from dataclasses import asdict

    from shoplake.runtime import service

    st = service.status(settings)
    print(json.dumps(asdict(st), indent=2, default=str))
    return 0 if st.running else 1


def _cmd_stream_maintain(args: argparse.Namespace, settings: Settings) -> int:
    """OPTIMIZE + VACUUM the streaming Delta tables."""
    from shoplake.runtime import service

    try:
        results = service.maintain(settings, args.retention_hours, vacuum=not args.no_vacuum)
    except ValueError as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=2))
    return 0


def _cmd_stream_reset(args: argparse.Namespace, settings: Settings) -> int:
    """Retire the lane's streaming state after confirming; refused while the stream runs."""
    from shoplake.pipeline.config import load_streaming_config
    from shoplake.runtime import lane, service

    cfg = load_streaming_config(settings)
    scope = args.only or "all"
    items = lane.retired_items(cfg, scope)
    if not items:
        print("nothing to reset")
        return 0
    if service.status(settings).running:
        print("shoplake: the stream is running; stop it first (shoplake stream stop)", file=sys.stderr)
        return 2
    rebuilt = (
        "from silver" if scope == "gold" else "from Kafka (records Kafka no longer holds stay in the retired copy)"
    )
    print("moving aside (kept under " + str(settings.home / "retired") + "):\n  " + "\n  ".join(map(str, items)))
    print(f"the next stream run rebuilds them {rebuilt}; PostgreSQL raw is kept (its upserts are keyed)")
    if not args.yes:
        if not sys.stdin.isatty():
            print("shoplake: not confirmed; pass --yes to reset without a terminal", file=sys.stderr)
            return 2
        if input("type 'reset' to confirm: ").strip() != "reset":
            print("shoplake: not confirmed; nothing was moved", file=sys.stderr)
            return 2
    print(f"moved to {lane.reset(cfg, settings.home, scope)}")
    return 0


def _add_stream_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stream = sub.add_parser("stream", help="Spark streaming: Kafka -> Delta bronze/silver -> PostgreSQL raw")
    ssub = stream.add_subparsers(dest="stream_command", required=True)
    p = ssub.add_parser("run", help="run in the foreground (continuous; --once = catch-up and exit)")
    p.add_argument("--once", action="store_true", help="process everything available now, then exit")
    p.add_argument(
        "--query",
        action="append",
        choices=["medallion", "gold", "scorer"],
        help="run only this query (repeatable); `--query scorer` = the streaming fraud scorer",
    )
    p.set_defaults(handler=_cmd_stream_run)
    p = ssub.add_parser("start", help="start the supervised continuous runner in the background")
    p.set_defaults(handler=_cmd_stream_start)
    p = ssub.add_parser("stop", help="stop the background runner")
    p.set_defaults(handler=_cmd_stream_stop)
    p = ssub.add_parser("status", help="runner state and last progress per query; exit 1 if not running")
    p.set_defaults(handler=_cmd_stream_status)
    p = ssub.add_parser("maintain", help="compact (OPTIMIZE) and VACUUM the streaming Delta tables")
    p.add_argument(
        "--retention-hours", type=int_in(0, 87_600), default=168, help="VACUUM retention, >= 168 (default 168)"
    )
    p.add_argument("--no-vacuum", action="store_true", help="only compact")
    p.set_defaults(handler=_cmd_stream_maintain)
    p = ssub.add_parser(
        "reset",
        help="move the streaming checkpoints and tables aside (kept under SHOPLAKE_HOME/retired/) to rebuild them",
    )
    p.add_argument(
        "--only",
        choices=["gold"],
        help="only gold's checkpoint and tables (rebuilt from silver); default: everything (rebuilt from Kafka)",
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=_cmd_stream_reset)


# ---- end of streaming block ------------------------------------------------------------------------------


# ---- warehouse block: the dbt project via shoplake.warehouse.dbt_runner --------------------------
def _warehouse_steps(run: Callable[[], list[dbt_runner.StepResult]]) -> int:
    """Print each step's summary; a failed step prints its readable failure report and exits 1."""
    try:
        results = run()
    except dbt_runner.WarehouseError as exc:
        print(f"shoplake warehouse: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(result.summary())
    return 0


def _cmd_warehouse_build(args: argparse.Namespace, settings: Settings) -> int:
    """deps -> seed -> staging -> marts -> test -> docs, the same functions the dbt_orchestration DAG calls."""
    options = dbt_runner.BuildOptions(full_refresh=args.full_refresh, docs=not args.no_docs)
    return _warehouse_steps(lambda: list(dbt_runner.build(settings, options)))


def _cmd_warehouse_test(args: argparse.Namespace, settings: Settings) -> int:
    return _warehouse_steps(lambda: [dbt_runner.run_tests(settings)])


def _cmd_warehouse_freshness(args: argparse.Namespace, settings: Settings) -> int:
    return _warehouse_steps(lambda: [dbt_runner.source_freshness(settings)])


def _cmd_warehouse_docs(args: argparse.Namespace, settings: Settings) -> int:
    """Generate the docs site; with --serve, serve it on bind_host:PORT until Ctrl-C."""
    if not args.serve or not dbt_runner.docs_site_exists(settings):
        code = _warehouse_steps(lambda: [dbt_runner.docs_generate(settings)])
        if code or not args.serve:
            return code
    print(f"serving dbt docs on http://{settings.bind_host}:{args.port} (Ctrl-C stops)")
    return dbt_runner.serve_docs(settings, args.port)


def _add_warehouse_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    warehouse = sub.add_parser("warehouse", help="dbt on PostgreSQL: raw.* -> staging -> marts, tests, docs")
    wsub = warehouse.add_subparsers(dest="warehouse_command", required=True)
    p = wsub.add_parser("build", help="deps -> seed -> staging -> marts -> test -> docs generate")
    p.add_argument("--full-refresh", action="store_true", help="rebuild incremental marts from scratch")
    p.add_argument("--no-docs", action="store_true", help="skip docs generate")
    p.set_defaults(handler=_cmd_warehouse_build)
    p = wsub.add_parser("test", help="run every dbt data and unit test")
    p.set_defaults(handler=_cmd_warehouse_test)
    p = wsub.add_parser("freshness", help="dbt source freshness of raw.* (exit 1 past error_after)")
    p.set_defaults(handler=_cmd_warehouse_freshness)
    p = wsub.add_parser("docs", help="generate the dbt docs site (--serve: serve it locally)")
    p.add_argument("--serve", action="store_true", help="serve the site on SHOPLAKE_BIND_HOST (127.0.0.1)")
    p.add_argument("--port", type=PORT, default=8580, help="port for --serve (default 8580)")
    p.set_defaults(handler=_cmd_warehouse_docs)


# ---- end of warehouse block --------------------------------------------------------------------------------


# ---- ingestion block: shoplake ingest --------------------------------------------------------------
def _cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Generate and deliver transactions; exit 0 only when every message was delivered and verified."""
    from datetime import UTC, datetime, timedelta

    from shoplake.contracts.registry import IncompatibleSchemaError, RegistryUnavailableError
    from shoplake.ingestion.producer import DeliveryError
    from shoplake.ingestion.run import IngestParameterError, ingest
    from shoplake.ingestion.topics import KafkaUnavailableError, TopicMismatchError
    from shoplake.ingestion.verify import VerificationError

    # The CLI is the edge where "today" may be read; the library only ever sees explicit instants.
    start = args.start or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
    span = timedelta(hours=args.span_hours) if args.span_hours is not None else None
    try:
        result = ingest(
            settings, args.transactions, args.seed, start, args.run_key, span=span, verify=not args.no_verify
        )
    except IngestParameterError as exc:
        print(f"shoplake ingest: {exc}", file=sys.stderr)
        return 2
    except (DeliveryError, VerificationError) as exc:
        print(f"shoplake ingest: {exc}", file=sys.stderr)
        print(json.dumps(exc.result.to_dict(), indent=2), file=sys.stderr)
        return 1
    except (KafkaUnavailableError, RegistryUnavailableError, IncompatibleSchemaError, TopicMismatchError) as exc:
        print(f"shoplake ingest: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        out = result.to_dict()
        print(
            f"ingested {out['delivered']:,}/{out['sent']:,} transactions ({out['fraud_transactions']:,} fraud) "
            f"into {out['topic']} in {out['seconds']:.1f}s ({out['transactions_per_second']:,.0f}/s); "
            f"schema id {out['schema_id']}; run key {out['run_key']!r}; "
            f"ids {out['first_transaction_id']} .. {out['last_transaction_id']}; "
            f"verified: {'yes' if result.verify else 'skipped'}"
        )
    return 0


def _add_ingest_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ingest", help="generate transactions and deliver them to Kafka (Avro, schema registry)")
    p.add_argument("--transactions", "-n", type=int_in(1, MAX_SEED), required=True, help="number of transactions (> 0)")
    p.add_argument(
        "--seed", type=int_in(0, MAX_SEED), default=42, help="world seed: same seed, same customers/merchants"
    )
    p.add_argument(
        "--start",
        type=iso_instant_with_zone,
        help="event-time start, ISO-8601 with timezone (default: today 00:00 UTC)",
    )
    p.add_argument("--run-key", help="logical run id; same key -> same transaction ids (default: start/seed/N)")
    p.add_argument(
        "--span-hours",
        type=number_in(0, 3660 * 24, low_inclusive=False),
        help="event-time window (default: N at 50k transactions/day)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip reading the topic back afterwards")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(handler=_cmd_ingest)


# ---- end of ingestion block ------------------------------------------------------------------------------


# ---- ML block: shoplake train / score (shoplake.ml) -------------------------------------------------
def _cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    """Train + evaluate out of time + register; then deploy if the gates pass. Exit 0 either way, 1 on error."""
    from shoplake.ml import deploy, extract, gates, workflow

    try:
        window = extract.resolve_window(settings, args.start, args.end, default_days=args.days)
        thresholds = gates.GateThresholds.from_settings(
            settings, min_precision=args.min_precision, min_recall=args.min_recall, min_f1=args.min_f1
        )
        from shoplake.lineage import job_run

        with job_run(settings, "ml"):
            result = workflow.train_and_evaluate(settings, window, seed=args.seed)
    except (ValueError, extract.ExtractError) as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 2
    decision = deploy.deploy(settings, result.run_id, thresholds) if not args.no_deploy else None
    print(json.dumps({"training": result.as_dict(), "deployment": decision.as_dict() if decision else None}, indent=2))
    return 0


def _cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    """Batch-score a silver window with the production model into gold/fraud_scores."""
    from shoplake.ml import extract, scoring

    try:
        window = extract.resolve_window(settings, args.start, args.end, default_days=1.0)
        result = scoring.score_window(settings, window)
    except (ValueError, extract.ExtractError, scoring.NoProductionModelError) as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict(), indent=2))
    return 0


def _add_ml_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train the fraud model out of time, register it, deploy if the gates pass")
    p.add_argument("--start", type=iso_instant, help="window start, ISO date/time UTC (default: --days before --end)")
    p.add_argument(
        "--end",
        type=iso_instant,
        help="window end (exclusive), ISO date/time UTC (default: just after the latest event)",
    )
    p.add_argument(
        "--days",
        type=number_in(0, 3660, low_inclusive=False),
        default=28.0,
        help="default window length in days (default 28)",
    )
    p.add_argument("--seed", type=int_in(0, MAX_ML_SEED), default=42, help="random seed of the forest (default 42)")
    p.add_argument("--min-precision", type=number_in(0, 1), help="override ML_MIN_PRECISION for this deployment")
    p.add_argument("--min-recall", type=number_in(0, 1), help="override ML_MIN_RECALL for this deployment")
    p.add_argument("--min-f1", type=number_in(0, 1), help="override ML_MIN_F1 for this deployment")
    p.add_argument("--no-deploy", action="store_true", help="register the candidate but do not try to deploy it")
    p.set_defaults(handler=_cmd_train)
    p = sub.add_parser("score", help="batch-score silver transactions with models:/fraud-detection-model@production")
    p.add_argument("--start", type=iso_instant, help="window start, ISO date/time UTC (default: the last day of data)")
    p.add_argument(
        "--end",
        type=iso_instant,
        help="window end (exclusive), ISO date/time UTC (default: just after the latest event)",
    )
    p.set_defaults(handler=_cmd_score)


# ---- end of ML block -----------------------------------------------------------------------------------------


# ---- Airflow / demo block: shoplake demo (shoplake.demo) -------------------------------------------
def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """The whole platform through Airflow; exit 1 when a DAG run (or the streaming catch-up) fails."""
    from shoplake.demo import DemoError, DemoOptions, format_summary, run_demo

    options = DemoOptions(num_transactions=args.transactions, seed=args.seed, start=args.start, span_days=args.days)
    try:
        # With --json, stdout carries only the summary; progress goes to stderr.
        summary = run_demo(settings, options, say=lambda m: print(m, file=sys.stderr if args.json else sys.stdout))
    except DemoError as exc:
        print(f"shoplake demo: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary.as_dict(), indent=2) if args.json else format_summary(summary))
    return 0


def _cmd_airflow(args: argparse.Namespace, settings: Settings) -> int:
    """The ``airflow`` CLI with the local stack's configuration (metadata DB, auth, dags folder, ports)."""
    import subprocess

    from shoplake.stack.airflow import cli_env

    argv = [a for a in args.airflow_args if a != "--"] or ["--help"]
    return subprocess.run([sys.executable, "-m", "airflow", *argv], env=cli_env(settings, argv), check=False).returncode


def _add_demo_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("airflow", help="run the airflow CLI against the local stack, e.g. shoplake airflow dags list")
    p.add_argument("airflow_args", nargs=argparse.REMAINDER, help="arguments for the airflow CLI")
    p.set_defaults(handler=_cmd_airflow)
    p = sub.add_parser("demo", help="stack up + ingestion -> streaming -> dbt -> ML -> health report via Airflow")
    p.add_argument(
        "-n", "--transactions", type=int_in(1, MAX_SEED), default=5_000, help="transactions to ingest (default 5000)"
    )
    p.add_argument("--seed", type=int_in(0, MAX_SEED), default=42, help="generator seed (default 42)")
    p.add_argument(
        "--start",
        type=iso_instant_with_zone,
        default="2026-01-05T00:00:00Z",
        help="event-time start (ISO-8601 with zone)",
    )
    p.add_argument(
        "--days",
        type=number_in(0, 3660, low_inclusive=False),
        default=21.0,
        help="event-time days the transactions cover (default 21)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_cmd_demo)


# ---- end of Airflow / demo block -----------------------------------------------------------------------------


# ---- monitoring block: shoplake report / dq ----------------------------------------------
def _cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """Write the health report (JSON + HTML); exit 1 when its status is FAIL."""
    from datetime import UTC, datetime

    from shoplake.monitoring import report

    result = report.run(settings, datetime.now(UTC))
    if args.json:
        print(json.dumps(result.content, indent=2, default=str))
    else:
        print(f"status {result.status}: {result.path} (HTML: {result.path.parent / 'latest.html'})")
        for line in result.problems + list(result.content["warnings"]):
            print(f"  {line}")
    return 0 if result.healthy else 1


def _cmd_dq(args: argparse.Namespace, settings: Settings) -> int:
    """Audit silver and the layer volumes, store the results; exit 1 (and alert) when a check fails."""
    from datetime import UTC, datetime

    from shoplake.pipeline.config import load_streaming_config
    from shoplake.quality import audit

    try:
        run = audit.publish_gate(settings, load_streaming_config(settings), datetime.now(UTC))
    except audit.DataQualityError as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(run.as_dict(), indent=2) if args.json else f"data quality passed ({len(run.checks)} checks)")
    return 0


def _add_monitoring_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="health report (Delta, lag, warehouse, model, DQ, lineage): JSON + HTML")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.set_defaults(handler=_cmd_report)
    p = sub.add_parser("dq", help="data-quality audit of silver (nulls, ranges, uniqueness, references, volumes)")
    p.add_argument("--json", action="store_true", help="print every check as JSON")
    p.set_defaults(handler=_cmd_dq)


# ---- end of monitoring block -----------------------------------------------------------------------------


# ---- dashboard (performance metrics) ------------------------------------------------------------------------
def _cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    """Write the performance dashboard (Airflow REST API + streaming progress) as JSON + static HTML."""
    from datetime import UTC, datetime

    from shoplake.airflow.rest import AirflowApiError
    from shoplake.monitoring.dashboard import build

    try:
        result = build(settings, datetime.now(UTC), limit=args.runs)
    except (AirflowApiError, OSError) as exc:  # OSError covers an API that is not listening
        print(f"shoplake dashboard: Airflow API unavailable ({exc}); start it with `shoplake up airflow`")
        return 1
    print(f"dashboard: {result.html_path} (numbers: {result.json_path})")
    return 0


def _runs(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be 1-10000")
    return value


def _add_dashboard_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dashboard", help="performance dashboard (DAG success/failure, durations, deadlines, queue)")
    p.add_argument("--runs", type=_runs, default=100, help="latest runs per DAG to include (default 100)")
    p.set_defaults(handler=_cmd_dashboard)


# ---- end of dashboard block ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoplake", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("config", help="print the effective settings (secrets masked)")
    p.set_defaults(handler=_cmd_config)

    _add_stack_commands(sub)
    _add_stream_commands(sub)
    _add_warehouse_commands(sub)
    _add_ingest_commands(sub)
    _add_ml_commands(sub)
    _add_demo_commands(sub)
    _add_dashboard_commands(sub)
    _add_monitoring_commands(sub)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        handler: Handler = args.handler
        return handler(args, settings)
    except (ConfigError, MissingDependencyError, StorageError, LaneError) as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
