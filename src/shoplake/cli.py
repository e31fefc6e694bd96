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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoplake", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("config", help="print the effective settings (secrets masked)")
    p.set_defaults(handler=_cmd_config)

    _add_stack_commands(sub)

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
