"""Static security checks over the repository: no secrets committed, no SQL built by string formatting.

Both are cheap enough to run on every commit and catch what review misses: a token pasted into a config
file, or ``conn.execute(f"... {value}")`` that works in every test and is an injection in production.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from shoplake.config import DEFAULT_PASSWORDS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

# ---- secrets in tracked files ------------------------------------------------------------------------------
# Values a password-like key may have in the repository: the documented local defaults, placeholders and
# references to the real value (environment variables, Jinja env_var, settings attributes).
ALLOWED_SECRET_VALUES = DEFAULT_PASSWORDS | {"changeme", "change-me", "<password>", "***", "secret"}
ALLOW_MARKER = "# pragma: allowlist secret"
_REFERENCE = re.compile(r"^(\$\{?|\{\{|env_var\(|settings\.|os\.environ|<|%\(|\*+$)")
_ASSIGNMENT = re.compile(
    r"""(?ix)\b[\w.]*(password|passwd|secret|api_key|apikey|token)["']?\s*[:=]\s*["']?([^"'\s,}#)]+)"""
)
_TOKEN_SHAPES = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[0-9A-Za-z-]{10,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[0-9A-Z]{6,}/"),
    "GitHub token": re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}"),
    "URL with credentials": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"{}]+:([^/\s@'\"{}]+)@"),
}
_TEXT_SUFFIXES = {
    ".py",
    ".toml",
    ".yaml",
    ".yml",
    ".json",
    ".cfg",
    ".ini",
    ".md",
    ".sh",
    ".sql",
    ".txt",
    ".avsc",
    ".example",
    "",
}


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = [ROOT / p for p in listed.decode().split("\0") if p]
    return [p for p in paths if p.is_file() and p.suffix in _TEXT_SUFFIXES and p.stat().st_size < 2_000_000]


def _is_allowed(value: str) -> bool:
    v = value.strip().strip("\"'")
    return v.lower() in ALLOWED_SECRET_VALUES or bool(_REFERENCE.match(v)) or not any(c.isalnum() for c in v)


def secret_findings(path: Path, text: str) -> list[str]:
    """``file:line: what`` for every secret-looking literal in ``text``.

    A line ending in ``# pragma: allowlist secret`` (the detect-secrets convention) holds deliberate fake
    test data and is skipped.
    """
    found = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.rstrip().endswith(ALLOW_MARKER):
            continue
        for name, shape in _TOKEN_SHAPES.items():
            match = shape.search(line)
            if match and not (name == "URL with credentials" and _is_allowed(match.group(1))):
                found.append(f"{path}:{lineno}: {name}")
        for match in _ASSIGNMENT.finditer(line):
            value = match.group(2)
            # identifiers on the right are code (``password=password``, ``token: str``), not literals
            quoted = re.search(r"[:=]\s*[\"']", match.group(0)) is not None
            if (quoted or path.suffix not in {".py"}) and not _is_allowed(value) and len(value) >= 6:
                found.append(f"{path}:{lineno}: {match.group(1)} = {value[:4]}...")
    return found


def test_no_secrets_beyond_the_documented_local_defaults_in_tracked_files() -> None:
    findings = [
        f for p in _tracked_text_files() for f in secret_findings(p.relative_to(ROOT), p.read_text("utf-8", "replace"))
    ]
    assert findings == []


@pytest.mark.parametrize(
    "line",
    [
        'POSTGRES_PASSWORD="s3cr3t-prod-value"',  # pragma: allowlist secret
        "db_password: hunter2hunter2",  # pragma: allowlist secret
        "url = 'postgresql://app:R3alPassw0rd@db.internal/warehouse'",  # pragma: allowlist secret
        "SLACK = 'https://hooks.slack.com/services/T0123ABCD/B0123/xyz'",  # pragma: allowlist secret
        "key = 'AKIAABCDEFGHIJKLMNOP'",  # pragma: allowlist secret
    ],
)
def test_the_secret_scan_catches_real_looking_secrets(line: str) -> None:
    assert secret_findings(Path("x.env"), line)


@pytest.mark.parametrize(
    "line",
    [
        "POSTGRES_PASSWORD=postgres",
        "password: \"{{ env_var('POSTGRES_PASSWORD') }}\"",
        "AIRFLOW_ADMIN_PASSWORD=admin",
        "url = f'postgresql://{user}:{password}@{host}'",
        "password=${POSTGRES_PASSWORD}",
    ],
)
def test_the_secret_scan_lets_documented_defaults_and_references_pass(line: str) -> None:
    assert secret_findings(Path("x.yaml"), line) == []


# ---- SQL built from strings ---------------------------------------------------------------------------------
_SQL_START = re.compile(r"^\s*(select|insert|update|delete|create|drop|alter|grant|truncate|copy|merge|with)\b", re.I)
_SQL_CALLS = {"execute", "executemany", "sql", "SQL", "copy"}


def _formatted(node: ast.AST) -> bool:
    """An f-string, ``%``/``+`` on strings, or ``"...".format(...)``: text built from values at run time."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return isinstance(node.left, ast.Constant | ast.JoinedStr | ast.BinOp)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
    )


def _leading_text(node: ast.AST) -> str:
    if isinstance(node, ast.JoinedStr):
        first = node.values[0] if node.values else None
        return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
    if isinstance(node, ast.BinOp):
        return _leading_text(node.left)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _leading_text(node.func.value)
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def formatted_sql(source: str) -> list[int]:
    """Lines where SQL text is built by formatting: as a query argument, or any string that starts like SQL."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in _SQL_CALLS and node.args and _formatted(node.args[0]):
                lines.append(node.lineno)
        elif _formatted(node) and _SQL_START.match(_leading_text(node)):
            lines.append(node.lineno)
    return sorted(set(lines))


def test_sql_is_built_with_parameters_and_quoted_identifiers_only() -> None:
    sources = [*ROOT.glob("src/shoplake/**/*.py"), *ROOT.glob("dags/*.py")]
    offenders = {str(p.relative_to(ROOT)): formatted_sql(p.read_text()) for p in sources}
    assert {p: lines for p, lines in offenders.items() if lines} == {}


@pytest.mark.parametrize(
    "source",
    [
        'conn.execute(f"SELECT * FROM t WHERE id = {x}")',
        'cur.execute("DELETE FROM t WHERE id = %s" % x)',
        'cur.execute("DELETE FROM t WHERE id = " + x)',
        'spark.sql("OPTIMIZE {}".format(path))',
        'query = f"select * from ({inner}) limit {n}"',
    ],
)
def test_the_sql_audit_catches_string_built_queries(source: str) -> None:
    assert formatted_sql(source) == [1]


@pytest.mark.parametrize(
    "source",
    [
        'conn.execute("SELECT * FROM t WHERE id = %s", (x,))',
        'conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))',
        'log.info(f"selected {n} rows")',
    ],
)
def test_the_sql_audit_accepts_parameters_and_identifiers(source: str) -> None:
    assert formatted_sql(source) == []
