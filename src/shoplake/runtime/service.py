"""Entry points the CLI and the DAGs call: catch-up runs, the continuous runner, and its supervision.

``shoplake stream start`` launches ``shoplake stream run`` (the continuous runner) as a background process
through the stack's process supervisor: own process group, pidfile ``{home}/run/stream.pid``, log
``{home}/logs/stream.log``. The runner writes ``{home}/streaming/state.json`` once its queries are running;
that file, written by the live pid, is the start-up health check. ``stop`` sends SIGTERM (the runner stops
its queries at a batch boundary) and falls back to SIGKILL, which is also safe: every sink is idempotent
and each query resumes from its checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from shoplake.config import Settings, env_for_children
from shoplake.files import tail_lines, write_text
from shoplake.pipeline.config import StreamingConfig, load_streaming_config
from shoplake.runtime.class_sharing import driver_pid, vouch
from shoplake.runtime.storage import check_writable
from shoplake.stack import process

PROCESS_NAME: Final = "stream"
STOP_TIMEOUT: Final = 90.0


def state_path(settings: Settings) -> Path:
    return settings.home / "streaming" / "state.json"


def storage_folders(settings: Settings, cfg: StreamingConfig) -> list[tuple[Path, str]]:
    """Every folder the streaming jobs write to, with the setting that chose it (for error messages)."""
    tables = (cfg.bronze_path, cfg.silver_path, cfg.quarantine_path, cfg.gold_hourly_sales_path)
    folders = {path.parent: f"DELTA_BASE_PATH or {settings.streaming_config.name}" for path in tables}
    folders[settings.lake.base_path] = "DELTA_BASE_PATH"
    folders[cfg.checkpoint_root] = f"SHOPLAKE_HOME or {settings.streaming_config.name}"
    return sorted(folders.items())


def _session(settings: Settings, cfg: StreamingConfig, app: str, *, long_running: bool = False) -> Any:
    """The Spark session of a streaming run, after checking that its storage can be written (fails in ms).

    ``long_running`` (the continuous service) pins the driver heap: see ``session.driver_java_options``.
    """
    from shoplake.runtime.progress import attach_progress_recorder
    from shoplake.runtime.session import spark_session

    check_writable(storage_folders(settings, cfg), settings.lake.min_free_mb)
    spark = spark_session(
        settings,
        app_name=app,
        shuffle_partitions=cfg.shuffle_partitions,
        driver_memory=cfg.driver_memory,
        long_running=long_running,
        aot_cache=not long_running,  # catch-up and maintenance runs: a fresh JVM each time (class_sharing)
    )
    attach_progress_recorder(spark, cfg)
    return spark


def run_once(
    settings: Settings, cfg: StreamingConfig | None = None, queries: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """Catch-up of ``queries`` (default: the configured pipeline without the scorer); per-stage stats.

    The default follows ``[pipeline].continuous`` so a catch-up run and the continuous service always use
    the same queries and checkpoints.
    """
    from shoplake.runtime.jobs import run_catch_up

    cfg = cfg or load_streaming_config(settings)
    spark = _session(settings, cfg, "shoplake-stream-catch-up")
    try:
        from shoplake.lineage import job_run

        stages = queries or tuple(q for q in cfg.continuous_stages if q != "scorer")
        with job_run(settings, "stream", cfg, stages):
            results = run_catch_up(spark, cfg, stages)
        if any(r.input_rows for r in results):  # it ran batches: the AOT cache its JVM trains holds their code
            vouch(settings, driver_pid(spark))
    finally:
        spark.stop()
    return [{"query": r.query, "seconds": round(r.seconds, 2), "input_rows": r.input_rows} for r in results]


def maintain(settings: Settings, retention_hours: int, vacuum: bool = True) -> list[dict[str, Any]]:
    """OPTIMIZE + VACUUM every streaming table (see :mod:`.maintenance`)."""
    from dataclasses import asdict

    from shoplake.runtime.maintenance import check_retention
    from shoplake.runtime.maintenance import maintain as run_maintenance

    check_retention(retention_hours)  # before a SparkSession exists: bad input costs nothing
    cfg = load_streaming_config(settings)
    spark = _session(settings, cfg, "shoplake-delta-maintenance")
    try:
        results = [asdict(r) for r in run_maintenance(spark, cfg, retention_hours=retention_hours, vacuum=vacuum)]
        vouch(settings, driver_pid(spark))  # it did its work: the AOT cache its JVM trains may be used
        return results
    finally:
        spark.stop()


def run_forever(settings: Settings, cfg: StreamingConfig | None = None, queries: tuple[str, ...] | None = None) -> None:
    """Continuous mode in the foreground until SIGTERM/SIGINT; what ``stream start`` runs in the background.

    ``queries`` (default: ``[pipeline].continuous``) picks the queries, e.g. only ``scorer``.
    """
    from shoplake.runtime.jobs import run_continuous

    cfg = cfg or load_streaming_config(settings)
    spark = _session(settings, cfg, "shoplake-stream", long_running=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)

    def started(queries: list[Any]) -> None:
        state = {"pid": os.getpid(), "queries": {q.name: str(q.id) for q in queries}}
        write_text(path, json.dumps(state))

    try:
        run_continuous(spark, cfg, stop, on_started=started, stages=queries or cfg.continuous_stages)
    finally:
        path.unlink(missing_ok=True)


def _state_pid(settings: Settings) -> int | None:
    try:
        return int(json.loads(state_path(settings).read_text())["pid"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def start_background(settings: Settings) -> int:
    """Start the supervised continuous runner (no-op if running); returns its pid once its queries run."""
    load_streaming_config(settings)  # a bad config fails here, not in the background log
    running = process.running_pid(settings.home, PROCESS_NAME)
    if running is not None:
        return running
    state_path(settings).unlink(missing_ok=True)
    spec = process.ProcessSpec(
        name=PROCESS_NAME,
        argv=[sys.executable, "-m", "shoplake.cli", "stream", "run"],
        env=env_for_children(settings),
        cwd=settings.project_dir,
    )
    holder: dict[str, int] = {}

    def healthy() -> bool:
        pid = process.running_pid(settings.home, PROCESS_NAME)
        holder["pid"] = pid or 0
        return pid is not None and _state_pid(settings) == pid

    return process.start(settings.home, spec, healthy, timeout=settings.service_start_timeout, what="streaming")


def stop_background(settings: Settings) -> bool:
    """Stop the supervised runner (SIGTERM, then SIGKILL after a deadline); True if it was running."""
    return process.stop(settings.home, PROCESS_NAME, timeout=STOP_TIMEOUT)


@dataclass(frozen=True)
class StreamStatus:
    pid: int | None
    running: bool
    last_progress: dict[str, dict[str, Any]]
    log: Path


def last_progress(metrics_path: Path, tail_bytes: int = 256_000) -> dict[str, dict[str, Any]]:
    """The most recent progress line per query (reads only the end of the JSONL log and its rotated part)."""
    lines = tail_lines(metrics_path, tail_bytes)
    latest: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # the first line of the tail may be cut
        if isinstance(rec, dict) and "query" in rec:
            latest[str(rec["query"])] = rec
    return latest


def status(settings: Settings) -> StreamStatus:
    cfg = load_streaming_config(settings)
    pid = process.running_pid(settings.home, PROCESS_NAME)
    return StreamStatus(
        pid=pid,
        running=pid is not None,
        last_progress=last_progress(cfg.metrics_path),
        log=process.log_file(settings.home, PROCESS_NAME),
    )
