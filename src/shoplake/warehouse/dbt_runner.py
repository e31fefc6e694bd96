"""Run the dbt project (``dbt/``) for the CLI (``shoplake warehouse ...``) and the ``dbt_orchestration`` DAG.

Both call the same functions - :func:`check_connection`, :func:`deps`, :func:`seed`, :func:`run_staging`,
:func:`run_marts`, :func:`test`, :func:`docs_generate` (and :func:`build`, all of them in order) - and get
:class:`StepResult` objects back: every node dbt touched with its status, and for each failure a readable
message (for a failed data test: which test on which model/column, how many rows, a sample of them).
A failed step raises :class:`DbtStepError` carrying that result, so a DAG task fails with the reason.

Why dbt runs in a separate, isolated interpreter
------------------------------------------------
dbt's plugin loader imports *every* top-level module on ``sys.path`` whose name starts with ``dbt_``.
Inside an Airflow worker the dags folder is on ``sys.path``, so ``dags/dbt_orchestration_dag.py`` would be
imported by dbt - re-executing the DAG file inside dbt, at best slow, at worst a crash or a loop. We
therefore never call dbt in-process: each batch of steps runs in a child ``python -I`` (isolated mode:
``PYTHONPATH`` is ignored and neither the working directory nor a script directory is put on
``sys.path``), started from the dbt project directory with ``PYTHONPATH`` removed from its environment.
The child's ``sys.path`` is the standard library plus site-packages, which hold no ``dbt_*`` DAG files.
Inside the child the steps run one after another through ``dbtRunner``, so a full build pays dbt's
import cost (seconds on this machine) once instead of once per step.

Paths: the project and ``profiles.yml`` live in ``{project_dir}/dbt``; compiled SQL, artifacts
(``manifest.json``, ``run_results.json``, the docs site), logs and installed packages go to
``{SHOPLAKE_HOME}/dbt/{target,logs,packages}`` so the repository stays clean. The dbt target is the settings' profile
(``local`` or ``production``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from shoplake.config import Settings, env_for_children
from shoplake.retry import is_postgres_connection_error, retry_transient

# Statuses dbt reports for a node that did not do its job (``warn`` is reported but is not a failure).
FAILED_STATUSES: Final = frozenset({"error", "fail", "runtime error"})
# Session settings for every warehouse connection dbt opens (libpq reads PGOPTIONS). PostgreSQL's defaults
# (4 MB work_mem, JIT on) make the 1M-row marts spill sorts to disk and spend a JIT compile on each of the
# ~100 test queries; these keep a full build inside its budget without touching the server's configuration.
PG_SESSION_OPTIONS: Final = "-c work_mem=256MB -c maintenance_work_mem=512MB -c jit=off"
# Failing rows quoted in a failed test's message.
SAMPLE_ROWS: Final = 3
SAMPLE_WIDTH: Final = 240
# Tables the project reads; check_connection fails early and clearly when the sink has not created them.
SOURCE_TABLES: Final = ("raw.transactions",)
# Lower-case fragments of libpq/PostgreSQL messages that mean "the server went away or is not up yet".
CONNECTION_ERROR_MARKERS: Final = (
    "connection refused",
    "could not connect to server",
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "connection already closed",
    "no connection to the server",
)


class WarehouseError(RuntimeError):
    """The warehouse cannot be built: unreachable database, missing sources, or a failed dbt step."""


class DbtStepError(WarehouseError):
    """A dbt step failed; ``result`` holds every node's outcome and the readable failures."""

    def __init__(self, result: StepResult) -> None:
        self.result = result
        super().__init__(result.failure_report())


@dataclass(frozen=True)
class DbtStep:
    """One dbt invocation: a name for logs/DAG tasks and the dbt arguments (``["run", "--select", ...]``)."""

    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class NodeResult:
    """The outcome of one dbt node (model, seed, data test, unit test, source freshness check)."""

    unique_id: str
    resource_type: str
    name: str
    status: str
    message: str | None
    failures: int | None
    execution_time: float
    # For a failed test: what it checks, e.g. "not_in_future on stg_raw__transactions.transacted_at".
    subject: str | None = None
    sample_rows: tuple[dict[str, Any], ...] = ()

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    def describe(self) -> str:
        """One readable paragraph: what failed, how, and the first offending rows."""
        what = f"{self.resource_type} {self.name}"
        if self.subject:
            what += f" ({self.subject})"
        if self.resource_type == "test" and self.status == "fail" and self.failures is not None:
            how = f"{self.failures} failing row(s)"
        else:
            how = (self.message or self.status).strip()
        text = f"{what}: {self.status.upper()} - {how}"
        for row in self.sample_rows:
            line = ", ".join(f"{k}={v}" for k, v in row.items())
            text += "\n    " + (line if len(line) <= SAMPLE_WIDTH else line[: SAMPLE_WIDTH - 3] + "...")
        return text


@dataclass(frozen=True)
class StepResult:
    """The outcome of one step: success, wall time, every node, and dbt's own error when it did not run."""

    step: str
    command: tuple[str, ...]
    success: bool
    elapsed: float
    nodes: tuple[NodeResult, ...] = ()
    error: str | None = None

    @property
    def failures(self) -> tuple[NodeResult, ...]:
        return tuple(node for node in self.nodes if node.failed)

    def counts(self) -> dict[str, int]:
        """Number of nodes per status, e.g. ``{"pass": 110, "fail": 1}``."""
        out: dict[str, int] = {}
        for node in self.nodes:
            out[node.status] = out.get(node.status, 0) + 1
        return out

    def summary(self) -> str:
        counts = ", ".join(f"{status}={n}" for status, n in sorted(self.counts().items())) or "no nodes"
        return f"{self.step}: {'OK' if self.success else 'FAILED'} in {self.elapsed:.1f}s ({counts})"

    def failure_report(self) -> str:
        lines = [f"dbt step '{self.step}' failed (dbt {' '.join(self.command)})"]
        lines.extend(f"  - {node.describe()}" for node in self.failures)
        if self.error:
            lines.append(f"  dbt: {self.error.strip()}")
        if len(lines) == 1:
            lines.append("  dbt reported failure without a failing node; see the dbt log")
        return "\n".join(lines)


@dataclass(frozen=True)
class DbtPaths:
    """Where the project lives and where dbt may write."""

    project_dir: Path
    target_dir: Path
    log_dir: Path
    packages_dir: Path

    @classmethod
    def of(cls, settings: Settings) -> DbtPaths:
        return cls(
            project_dir=settings.project_dir / "dbt",
            target_dir=settings.home / "dbt" / "target",
            log_dir=settings.home / "dbt" / "logs",
            packages_dir=settings.home / "dbt" / "packages",
        )


@dataclass(frozen=True)
class BuildOptions:
    """Options of a build: rebuild incremental marts from scratch, run the data tests, generate the docs site.

    ``select`` narrows every step to one dbt node selector (e.g. ``+fct_transactions``: that mart and
    everything it is built from, seeds included), so a check that needs one mart - the fault tests' private
    lanes - does not pay for building and testing all of them.
    """

    full_refresh: bool = False
    docs: bool = True
    extra_vars: Mapping[str, str] = field(default_factory=dict)
    tests: bool = True
    select: str | None = None

    def __post_init__(self) -> None:
        # Each step intersects its own selection with this one ("marts,<select>"): a selector with spaces
        # (a union) would turn that intersection into a union, so refuse it before dbt runs anything.
        if self.select is not None and (not self.select or any(c.isspace() or c == "," for c in self.select)):
            raise ValueError(f"dbt selection {self.select!r}: must be one dbt node selector without spaces or commas")


# ---- argument building (pure) -------------------------------------------------------------------------------


def _with_options(args: list[str], options: BuildOptions, *, refreshable: bool) -> tuple[str, ...]:
    if refreshable and options.full_refresh:
        args.append("--full-refresh")
    if options.extra_vars and args[0] != "deps":
        args.extend(["--vars", json.dumps(dict(options.extra_vars), sort_keys=True)])
    return tuple(args)


def _selecting(args: list[str], layer: str | None, options: BuildOptions) -> list[str]:
    """``args`` restricted to ``layer`` (a folder of models) and/or ``options.select`` (their intersection)."""
    chosen = [part for part in (layer, options.select) if part]
    return [*args, "--select", ",".join(chosen)] if chosen else args


def build_steps(options: BuildOptions = BuildOptions()) -> list[DbtStep]:
    """The build in order: deps -> seed -> staging -> marts (-> test) (-> docs generate)."""
    steps = [
        DbtStep("deps", _with_options(["deps"], options, refreshable=False)),
        DbtStep("seed", _with_options(_selecting(["seed"], None, options), options, refreshable=True)),
        DbtStep("run_staging", _with_options(_selecting(["run"], "staging", options), options, refreshable=True)),
        DbtStep("run_marts", _with_options(_selecting(["run"], "marts", options), options, refreshable=True)),
    ]
    if options.tests:
        steps.append(DbtStep("test", _with_options(_selecting(["test"], None, options), options, refreshable=False)))
    if options.docs:
        steps.append(DbtStep("docs_generate", _with_options(["docs", "generate"], options, refreshable=False)))
    return steps


def child_env(settings: Settings, paths: DbtPaths) -> dict[str, str]:
    """Environment of the dbt child: the platform's settings plus dbt's paths/target, no PYTHONPATH."""
    env = env_for_children(
        settings,
        DBT_PROJECT_DIR=paths.project_dir,
        DBT_PROFILES_DIR=paths.project_dir,
        DBT_TARGET=settings.profile,
        DBT_TARGET_PATH=paths.target_dir,
        DBT_LOG_PATH=paths.log_dir,
        DBT_PACKAGES_INSTALL_PATH=paths.packages_dir,
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_VERSION_CHECK="false",
        DBT_USE_COLORS="false",
        DO_NOT_TRACK="1",
        PGOPTIONS=PG_SESSION_OPTIONS,
        SHOPLAKE_MAX_CLOCK_SKEW_MINUTES=settings.streaming.silver.max_clock_skew_minutes,
    )
    env.pop("PYTHONPATH", None)
    return env


def child_command(paths: DbtPaths, results_file: Path, steps: Sequence[DbtStep]) -> list[str]:
    """``python -I -c ...`` running :func:`_child_main` on the steps (see the module docstring for why -I)."""
    payload = json.dumps([{"name": s.name, "args": list(s.args)} for s in steps])
    bootstrap = "import sys; from shoplake.warehouse.dbt_runner import _child_main; sys.exit(_child_main(sys.argv[1:]))"
    return [sys.executable, "-I", "-c", bootstrap, str(results_file), str(paths.target_dir), payload]


# ---- result parsing (pure) ------------------------------------------------------------------------------------


def describe_test(node: Mapping[str, Any]) -> str | None:
    """'<test> on <model>.<column>' for a data test manifest node, None for anything else."""
    metadata = node.get("test_metadata") or {}
    test_name = metadata.get("name") or node.get("name")
    attached = node.get("attached_node") or next(iter((node.get("depends_on") or {}).get("nodes") or []), None)
    if not attached:
        return None
    parts = str(attached).split(".")
    target = ".".join(parts[-2:]) if attached.startswith("source.") else parts[-1]
    column = node.get("column_name") or (metadata.get("kwargs") or {}).get("column_name")
    return f"{test_name} on {target}.{column}" if column else f"{test_name} on {target}"


def parse_run_results(
    run_results: Mapping[str, Any] | None, manifest: Mapping[str, Any] | None = None
) -> tuple[NodeResult, ...]:
    """NodeResults from a ``run_results.json`` document (``sources.json`` has the same shape)."""
    if not run_results:
        return ()
    nodes = dict((manifest or {}).get("nodes") or {})
    nodes.update((manifest or {}).get("unit_tests") or {})
    out: list[NodeResult] = []
    for raw in run_results.get("results") or []:
        unique_id = str(raw["unique_id"])
        resource_type = unique_id.split(".", 1)[0]
        node = nodes.get(unique_id) or {}
        status = str(raw.get("status", "unknown")).lower()
        subject = describe_test(node) if resource_type == "test" and status in FAILED_STATUSES else None
        out.append(
            NodeResult(
                unique_id=unique_id,
                resource_type=resource_type,
                name=str(node.get("name") or unique_id.split(".")[-2 if resource_type == "test" else -1]),
                status=status,
                message=raw.get("message") or _freshness_message(raw),
                failures=raw.get("failures"),
                execution_time=float(raw.get("execution_time") or 0.0),
                subject=subject,
            )
        )
    return tuple(out)


def _freshness_message(raw: Mapping[str, Any]) -> str | None:
    """'last loaded 30.0 h ago (...)' for a ``sources.json`` result, None for anything else."""
    age = raw.get("max_loaded_at_time_ago_in_s")
    if age is None:
        return None
    criteria = raw.get("criteria") or {}
    limits = ", ".join(
        f"{kind} after {rule['count']} {rule['period']}"
        for kind in ("warn", "error")
        if (rule := criteria.get(f"{kind}_after") or {}).get("count") is not None
    )
    return f"last loaded {float(age) / 3600:.1f} h ago (max_loaded_at {raw.get('max_loaded_at')}; {limits})"


def step_result(step: DbtStep, record: Mapping[str, Any], manifest: Mapping[str, Any] | None) -> StepResult:
    """A StepResult from one record the child wrote (success, elapsed, exception, run_results)."""
    nodes = parse_run_results(record.get("run_results"), manifest)
    success = bool(record.get("success")) and not any(node.failed for node in nodes)
    return StepResult(
        step=step.name,
        command=step.args,
        success=success,
        elapsed=float(record.get("elapsed") or 0.0),
        nodes=nodes,
        error=record.get("exception"),
    )


# ---- execution ------------------------------------------------------------------------------------------------


def run_steps(settings: Settings, steps: Sequence[DbtStep]) -> list[StepResult]:
    """Run ``steps`` in one isolated dbt child; stop at the first failure and raise DbtStepError for it.

    A step that failed because PostgreSQL went away (restart, crash) is retried with backoff from that
    step on (:mod:`shoplake.retry`); the steps before it are not repeated. This is safe because every step
    is idempotent: seeds and table models are rebuilt, incremental marts merge on their unique keys.
    """
    done: list[StepResult] = []
    retry_transient(
        lambda: _run_remaining(settings, steps, done),
        what=f"dbt ({', '.join(step.name for step in steps)})",
        is_transient=is_connection_failure,
    )
    return done


def is_connection_failure(exc: BaseException) -> bool:
    """True when a dbt step failed because the database connection failed (not because of SQL or data)."""
    if not isinstance(exc, DbtStepError):
        return False
    texts = [exc.result.error or "", *(node.message or "" for node in exc.result.failures)]
    return any(marker in text.lower() for text in texts for marker in CONNECTION_ERROR_MARKERS)


def _run_remaining(settings: Settings, steps: Sequence[DbtStep], done: list[StepResult]) -> None:
    """Run the steps not yet in ``done``, appending each success to it (so a retry resumes, not restarts)."""
    steps = steps[len(done) :]
    paths = DbtPaths.of(settings)
    if not (paths.project_dir / "dbt_project.yml").is_file():
        raise WarehouseError(f"no dbt project at {paths.project_dir} (expected dbt_project.yml)")
    paths.target_dir.mkdir(parents=True, exist_ok=True)
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shoplake-dbt-") as tmp:
        results_file = Path(tmp) / "results.jsonl"
        proc = subprocess.run(
            child_command(paths, results_file, steps),
            cwd=paths.project_dir,
            env=child_env(settings, paths),
            stdin=subprocess.DEVNULL,
            check=False,
        )
        records = [json.loads(line) for line in results_file.read_text().splitlines()] if results_file.exists() else []
    manifest = _read_json(paths.target_dir / "manifest.json")
    results: list[StepResult] = []
    for step, record in zip(steps, records, strict=False):
        result = step_result(step, record, manifest)
        if not result.success:
            result = _with_samples(settings, result, record.get("run_results"))
            raise DbtStepError(result)
        results.append(result)
        done.append(result)
    if len(results) < len(steps):
        missing = steps[len(results)]
        raise DbtStepError(
            StepResult(
                step=missing.name,
                command=missing.args,
                success=False,
                elapsed=0.0,
                error=f"the dbt child process exited with code {proc.returncode} before reporting this step",
            )
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _with_samples(settings: Settings, result: StepResult, run_results: Mapping[str, Any] | None) -> StepResult:
    """Attach the first failing rows of each failed data test (re-running its compiled query, LIMIT n)."""
    compiled = {str(r["unique_id"]): r.get("compiled_code") for r in (run_results or {}).get("results") or []}
    nodes = []
    for node in result.nodes:
        sql = compiled.get(node.unique_id)
        if node.resource_type == "test" and node.status == "fail" and sql:
            nodes.append(replace(node, sample_rows=_sample(settings, sql)))
        else:
            nodes.append(node)
    return replace(result, nodes=tuple(nodes))


def _sample(settings: Settings, sql: str) -> tuple[dict[str, Any], ...]:
    import psycopg
    from psycopg import sql as pgsql
    from psycopg.rows import dict_row

    # The compiled test is the project's own SQL (trusted code); it is composed, never formatted, with values.
    query = pgsql.SQL("select * from ({}) as failing_rows limit {}").format(
        pgsql.SQL(sql.strip().rstrip(";")), pgsql.Literal(SAMPLE_ROWS)
    )
    try:
        with psycopg.connect(settings.postgres.dsn(), connect_timeout=5, row_factory=dict_row) as conn:
            return tuple(conn.execute(query).fetchall())
    except psycopg.Error:
        return ()  # the count in the message still stands; a sample is a courtesy


def _one(settings: Settings, step: DbtStep) -> StepResult:
    return run_steps(settings, [step])[0]


def _step(name: str, options: BuildOptions = BuildOptions()) -> DbtStep:
    """The build step called ``name`` (the single-step functions below run exactly what a build would)."""
    return next(step for step in build_steps(options) if step.name == name)


def check_connection(settings: Settings) -> StepResult:
    """The warehouse database answers and the source tables exist; raises WarehouseError saying which is wrong."""
    import psycopg

    started = time.monotonic()
    where = f"{settings.postgres.user}@{settings.postgres.host}:{settings.postgres.port}/{settings.postgres.db}"

    def missing_sources() -> list[str]:
        with psycopg.connect(settings.postgres.dsn(), connect_timeout=10) as conn:
            return [
                name for name in SOURCE_TABLES if conn.execute("select to_regclass(%s)", (name,)).fetchone() == (None,)
            ]

    try:
        missing = retry_transient(
            missing_sources, what=f"connecting to PostgreSQL {where}", is_transient=is_postgres_connection_error
        )
    except psycopg.Error as exc:
        raise WarehouseError(f"cannot connect to PostgreSQL {where}: {str(exc).strip()}") from exc
    if missing:
        raise WarehouseError(
            f"PostgreSQL {where} has no {', '.join(missing)}: the streaming warehouse sink creates and fills "
            "the raw schema; run it before building the warehouse"
        )
    return StepResult("check_connection", (), True, time.monotonic() - started)


def deps(settings: Settings) -> StepResult:
    return _one(settings, _step("deps"))


def seed(settings: Settings, options: BuildOptions = BuildOptions()) -> StepResult:
    return _one(settings, _step("seed", options))


def run_staging(settings: Settings, options: BuildOptions = BuildOptions()) -> StepResult:
    return _one(settings, _step("run_staging", options))


def run_marts(settings: Settings, options: BuildOptions = BuildOptions()) -> StepResult:
    from shoplake.lineage import job_run

    with job_run(settings, "dbt"):
        return _one(settings, _step("run_marts", options))


def run_tests(settings: Settings, options: BuildOptions = BuildOptions()) -> StepResult:
    return _one(settings, _step("test", replace(options, tests=True)))


def docs_generate(settings: Settings) -> StepResult:
    return _one(settings, DbtStep("docs_generate", ("docs", "generate")))


def source_freshness(settings: Settings) -> StepResult:
    """``dbt source freshness``: fails when raw.* has not been loaded within the sources' error_after."""
    return _one(settings, DbtStep("source_freshness", ("source", "freshness")))


def parse(settings: Settings) -> StepResult:
    """``dbt parse``: validates the project without touching the database."""
    return _one(settings, DbtStep("parse", ("parse",)))


def build(settings: Settings, options: BuildOptions = BuildOptions()) -> list[StepResult]:
    """check_connection -> deps -> seed -> staging -> marts -> test -> docs, the dbt steps in one child."""
    from shoplake.lineage import job_run

    connected = check_connection(settings)
    with job_run(settings, "dbt"):
        return [connected, *run_steps(settings, build_steps(options))]


def docs_site_exists(settings: Settings) -> bool:
    return (DbtPaths.of(settings).target_dir / "index.html").is_file()


def serve_docs(settings: Settings, port: int) -> int:
    """Serve the generated docs site on ``bind_host:port`` until interrupted (blocking)."""
    paths = DbtPaths.of(settings)
    if not docs_site_exists(settings):
        raise WarehouseError(f"no docs site in {paths.target_dir}: run `shoplake warehouse build` first")
    step = DbtStep("docs_serve", ("docs", "serve", "--host", settings.bind_host, "--port", str(port), "--no-browser"))
    with tempfile.TemporaryDirectory(prefix="shoplake-dbt-") as tmp:
        try:
            return subprocess.run(
                child_command(paths, Path(tmp) / "results.jsonl", [step]),
                cwd=paths.project_dir,
                env=child_env(settings, paths),
                stdin=subprocess.DEVNULL,
                check=False,
            ).returncode
        except KeyboardInterrupt:
            return 0


# ---- the child side -------------------------------------------------------------------------------------------


def _child_main(argv: Sequence[str]) -> int:
    """Entry point of the isolated child: run each step with dbtRunner and append one JSON record per step.

    Runs only inside ``python -I`` started by :func:`run_steps`; stops after the first failed step.
    """
    from dbt.cli.main import dbtRunner

    results_file, target_dir, payload = Path(argv[0]), Path(argv[1]), json.loads(argv[2])
    for spec in payload:
        args = list(spec["args"])
        run_results_path = target_dir / ("sources.json" if args[:2] == ["source", "freshness"] else "run_results.json")
        run_results_path.unlink(missing_ok=True)  # never report a previous command's results as this one's
        started = time.monotonic()
        try:
            outcome = dbtRunner().invoke(args)
            success, exception = bool(outcome.success), outcome.exception
        except Exception as exc:  # dbt raised instead of reporting: still write a record the parent can read
            success, exception = False, exc
        record = {
            "name": spec["name"],
            "success": success,
            "elapsed": time.monotonic() - started,
            "exception": None if exception is None else f"{type(exception).__name__}: {exception}",
            "run_results": _read_json(run_results_path),
        }
        with results_file.open("a") as out:
            out.write(json.dumps(record, default=str) + "\n")
        if not success:
            return 1
    return 0
