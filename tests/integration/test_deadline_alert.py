"""A real deadline miss: scheduler detects it, the triggerer runs our callback, the webhook receives the alert.

The DAGs are re-serialized with ``AIRFLOW_DEADLINE_SCALE`` so small that the streaming-health DAG's 30-minute
deadline becomes about a second; a run triggered through the REST API then misses it while its tasks run.
The alert's destination is the Airflow connection ``shoplake_alerts``, pointed at an HTTP receiver started
here - the running stack needs no restart. Afterwards the DAGs are re-serialized with the real deadlines.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shoplake.airflow.alerts import ALERT_CONNECTION_ID
from shoplake.airflow.rest import AirflowClient
from shoplake.config import Settings
from shoplake.stack.airflow import airflow_env

DAG = "spark_streaming_orchestration"
TINY_SCALE = "0.0005"  # 30 min -> 0.9 s
ALERT_TIMEOUT = 180.0


class _Receiver(BaseHTTPRequestHandler):
    received: queue.Queue[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.put(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    handler = type("Handler", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def alert_connection(airflow: AirflowClient, webhook: tuple[str, queue.Queue[dict[str, Any]]]) -> Iterator[str]:
    url, _ = webhook
    body = {"connection_id": ALERT_CONNECTION_ID, "conn_type": "http", "host": url}
    airflow.request("POST", "/connections", json=body)
    try:
        yield url
    finally:
        airflow.request("DELETE", f"/connections/{ALERT_CONNECTION_ID}")


def reserialize(settings: Settings, scale: str | None) -> None:
    """``airflow dags reserialize`` with ``AIRFLOW_DEADLINE_SCALE=scale`` (None: the stack's own value)."""
    env = airflow_env(settings)
    if scale is not None:
        env["AIRFLOW_DEADLINE_SCALE"] = scale
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "reserialize"],
        env=env,
        cwd=settings.airflow.home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def deadline_alerts(received: queue.Queue[dict[str, Any]], run_id: str) -> Iterator[str]:
    """Texts of the deadline alerts for ``run_id`` as they arrive (other alerts are passed over)."""
    while True:
        text = str(received.get(timeout=ALERT_TIMEOUT).get("text", ""))
        if "deadline missed" in text and run_id in text:
            yield text


def had_tiny_deadline(airflow: AirflowClient, run_id: str) -> bool:
    """Whether a finished run was created with the shrunk deadline.

    Airflow deletes a run's deadline rows when the run ends before them, and keeps them when it ends after:
    a finished run with a deadline row had the ~1 s deadline; one without had the real 30 minutes (or none).
    """
    rows = airflow.request("GET", f"/dags/{DAG}/dagRuns/{run_id}/deadlines", prefix="/ui")["deadlines"]
    return bool(rows)


@pytest.mark.integration
def test_missed_deadline_posts_an_alert_to_the_webhook(
    stack: Settings,
    airflow: AirflowClient,
    webhook: tuple[str, queue.Queue[dict[str, Any]]],
    alert_connection: str,
) -> None:
    """The running DAG processor re-serializes the DAG file with the stack's real deadlines every ~30 s, so
    it can overwrite the shrunk serialization between ``reserialize`` and the trigger (CI saw a run created
    with the 30-minute deadline). Such a run is recognised from its deadline rows and the attempt repeated;
    a run that had the shrunk deadline and brought no alert fails the test."""
    _, received = webhook
    try:
        for _attempt in range(3):
            reserialize(stack, TINY_SCALE)
            run = airflow.trigger_and_wait(DAG, {}, timeout=600)
            if had_tiny_deadline(airflow, run.run_id):
                break
        else:
            pytest.fail("three runs in a row were created without the shrunk deadline")
        text = next(deadline_alerts(received, run.run_id))  # queue.Empty after ALERT_TIMEOUT = no alert
    finally:
        reserialize(stack, None)
    assert f"dag={DAG}" in text
    assert "not finished by" in text
