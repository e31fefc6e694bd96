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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoplake", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("config", help="print the effective settings (secrets masked)")
    p.set_defaults(handler=_cmd_config)

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
