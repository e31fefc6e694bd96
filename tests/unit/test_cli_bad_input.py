"""Every CLI command refuses wrong types, negative, huge and injection-style arguments before any side effect.

"Before any side effect" is checked, not assumed: the settings point at a state directory and Delta path
that do not exist and at ports where nothing listens. A command that started a service, opened a Spark
session, created a folder or tried the broker before validating would leave a directory behind or fail
with a connection error (exit 1) instead of the usage error (exit 2) asserted here.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoplake.cli import main
from shoplake.config import get_settings

pytestmark = pytest.mark.unit

INJECTION = "1; DROP TABLE raw.transactions; --"
TRAVERSAL = "../../etc/passwd"
HUGE = str(10**30)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings whose state and data folders do not exist and whose services are unreachable."""
    port = _dead_port()
    monkeypatch.setenv("SHOPLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DELTA_BASE_PATH", str(tmp_path / "delta"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("POSTGRES_PORT", str(port))
    monkeypatch.setenv("INGEST_MAX_TRANSACTIONS", "1000000")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


# (argv, exit code, fragment of the error message). Exit 2 from the parser or a handler's validation; the
# demo's settings-dependent cap exits 1 (DemoError) but before the stack is touched.
CASES: list[tuple[list[str], int, str]] = [
    # local stack
    (["up", INJECTION], 2, "unknown service"),
    (["down", TRAVERSAL], 2, "unknown service"),
    (["status", "kafka; rm -rf /"], 2, "unknown service"),
    (["logs", TRAVERSAL], 2, "unknown service"),
    (["logs", "kafka", "-n", "-5"], 2, "--lines"),
    (["logs", "kafka", "-n", "ten"], 2, "not an integer"),
    (["logs", "kafka", "-n", HUGE], 2, "outside"),
    # streaming
    (["stream", "maintain", "--retention-hours", "-1"], 2, "outside"),
    (["stream", "maintain", "--retention-hours", "12"], 2, "unsafe"),
    (["stream", "maintain", "--retention-hours", "1.5"], 2, "not an integer"),
    (["stream", "maintain", "--retention-hours", HUGE], 2, "outside"),
    (["stream", "run", "--once", "--bogus"], 2, "unrecognized"),
    # warehouse
    (["warehouse", "docs", "--serve", "--port", "0"], 2, "outside"),
    (["warehouse", "docs", "--serve", "--port", "70000"], 2, "outside"),
    (["warehouse", "docs", "--serve", "--port", INJECTION], 2, "not an integer"),
    # ingestion
    (["ingest", "-n", "0"], 2, "outside"),
    (["ingest", "-n", "-5"], 2, "outside"),
    (["ingest", "-n", "1e3"], 2, "not an integer"),
    (["ingest", "-n", HUGE], 2, "outside"),
    (["ingest", "-n", "2000000"], 2, "INGEST_MAX_TRANSACTIONS"),
    (["ingest", "-n", "10", "--seed", "-1"], 2, "outside"),
    (["ingest", "-n", "10", "--seed", INJECTION], 2, "not an integer"),
    (["ingest", "-n", "10", "--start", INJECTION], 2, "ISO-8601"),
    (["ingest", "-n", "10", "--start", TRAVERSAL], 2, "ISO-8601"),
    (["ingest", "-n", "10", "--start", "2026-01-01T00:00:00"], 2, "timezone"),
    (["ingest", "-n", "10", "--start", "1900-01-01T00:00:00Z"], 2, "outside"),
    (["ingest", "-n", "10", "--span-hours", "nan"], 2, "outside"),
    (["ingest", "-n", "10", "--span-hours", "inf"], 2, "outside"),
    (["ingest", "-n", "10", "--span-hours", "0"], 2, "outside"),
    (["ingest", "-n", "10", "--span-hours", "-3"], 2, "outside"),
    (["ingest", "-n", "10", "--run-key", " "], 2, "run_key"),
    (["ingest", "-n", "10", "--run-key", "k" * 300], 2, "run_key"),
    # ML
    (["train", "--days", "0"], 2, "outside"),
    (["train", "--days", "-7"], 2, "outside"),
    (["train", "--days", "nan"], 2, "outside"),
    (["train", "--seed", str(2**32)], 2, "outside"),
    (["train", "--seed", "-1"], 2, "outside"),
    (["train", "--min-precision", "1.5"], 2, "outside"),
    (["train", "--min-recall", "-0.1"], 2, "outside"),
    (["train", "--min-f1", INJECTION], 2, "not a number"),
    (["train", "--start", TRAVERSAL], 2, "ISO-8601"),
    (["score", "--end", INJECTION], 2, "ISO-8601"),
    (["score", "--start", "tomorrow"], 2, "ISO-8601"),
    # demo
    (["demo", "-n", "0"], 2, "outside"),
    (["demo", "-n", HUGE], 2, "outside"),
    (["demo", "-n", "2000000"], 1, "INGEST_MAX_TRANSACTIONS"),
    (["demo", "--days", "inf"], 2, "outside"),
    (["demo", "--days", "-1"], 2, "outside"),
    (["demo", "--start", "yesterday"], 2, "ISO-8601"),
    (["demo", "--seed", INJECTION], 2, "not an integer"),
]


@pytest.mark.parametrize(("argv", "code", "fragment"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_argument_is_refused_before_any_side_effect(
    isolated: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, fragment: str
) -> None:
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse: usage error
        got = int(exc.code or 0)
    err = capsys.readouterr().err
    assert got == code, err
    assert fragment.lower() in err.lower()
    assert not (isolated / "home").exists(), "a state folder was created before the input was validated"
    assert not (isolated / "delta").exists()


def test_every_numeric_cli_option_has_a_checked_type() -> None:
    """A new option with a bare ``type=int``/``float`` would accept negatives, nan and huge values again."""
    import argparse

    from shoplake.cli import build_parser

    def parsers(p: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
        yield p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    yield from parsers(child)

    bare = [
        f"{p.prog} {'/'.join(a.option_strings)}"
        for p in parsers(build_parser())
        for a in p._actions
        if a.type in (int, float)
    ]
    assert bare == []
