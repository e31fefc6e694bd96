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

from shoplake.config import ConfigError, Settings, get_settings
from shoplake.jvm import MissingDependencyError
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
    except stack.ServiceError as exc:
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
    except stack.ServiceError as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """Health of every service; exit 1 when a requested service (default: all) is unhealthy."""
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
    return 0 if all(r.healthy for r in rows) else 1


def _cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    """Print the last lines of a service's log files."""
    from shoplake.stack import control, process

    try:
        paths = control.log_paths(settings, args.service)
    except ValueError as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 2
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
    p.add_argument("-n", "--lines", type=int, default=50, help="number of lines (default 50)")
    p.set_defaults(handler=_cmd_logs)


# ---- end of local stack block ----------------------------------------------------------------------------


# ---- warehouse block (helper D): the dbt project via shoplake.warehouse.dbt_runner --------------------------
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
    p.add_argument("--port", type=int, default=8580, help="port for --serve (default 8580)")
    p.set_defaults(handler=_cmd_warehouse_docs)


# ---- end of warehouse block --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoplake", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("config", help="print the effective settings (secrets masked)")
    p.set_defaults(handler=_cmd_config)

    _add_stack_commands(sub)
    _add_warehouse_commands(sub)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        handler: Handler = args.handler
        return handler(args, settings)
    except (ConfigError, MissingDependencyError) as exc:
        print(f"shoplake: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
