"""Pure logic of the DAG helpers: parameter precedence, gate Variables, the sensor's recency, webhook alerts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from shoplake.airflow import alerts
from shoplake.airflow.params import DEFAULT_NUM_TRANSACTIONS, gate_override, resolve_num_transactions
from shoplake.airflow.sensors import is_recent
from shoplake.config import Settings

SETTINGS = Settings.from_env({"INGEST_MAX_TRANSACTIONS": "1000000"})


@pytest.mark.unit
def test_num_transactions_conf_then_variable_then_default() -> None:
    assert resolve_num_transactions(SETTINGS, 5000, "20") == 5000
    assert resolve_num_transactions(SETTINGS, None, " 20 ") == 20
    assert resolve_num_transactions(SETTINGS, None, None) == DEFAULT_NUM_TRANSACTIONS
    assert resolve_num_transactions(SETTINGS, None, "") == DEFAULT_NUM_TRANSACTIONS


@pytest.mark.unit
@pytest.mark.parametrize("bad", ["abc", "0", "-3", "2000000", "1.5"])
def test_bad_num_transactions_variable_is_an_error_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="data_platform_num_transactions"):
        resolve_num_transactions(SETTINGS, None, bad)


@pytest.mark.unit
def test_gate_variables() -> None:
    assert gate_override("ml_min_recall", None) is None
    assert gate_override("ml_min_recall", "0.65") == 0.65
    for bad in ("high", "1.5", "-0.1"):
        with pytest.raises(ValueError, match="ml_min_recall"):
            gate_override("ml_min_recall", bad)


@pytest.mark.unit
def test_sensor_recency_window() -> None:
    due = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    age = timedelta(hours=12)
    assert is_recent("2026-02-28T13:00:00+00:00", due, age)
    assert is_recent("2026-03-01T00:05:00Z", due, age)  # ended after the run was due: fine
    assert not is_recent("2026-02-28T11:59:00+00:00", due, age)
    assert not is_recent(None, due, age)


class _Sink(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Sink.received.append(json.loads(body))
        self.send_response(_Sink.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def webhook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Sink.received = []
    _Sink.status = 200
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def _context() -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="dbt_orchestration", run_id="manual__1", task_id="dbt_test", try_number=2)
    return {"ti": ti, "exception": RuntimeError("2 tests failed")}


@pytest.mark.unit
def test_failure_alert_is_posted_to_the_webhook(webhook: str) -> None:
    settings = Settings.from_env({"ALERT_WEBHOOK_URL": webhook})
    assert alerts.post(settings, alerts.message("task failed", _context())) is True
    text = _Sink.received[0]["text"]
    assert "dag=dbt_orchestration" in text and "task=dbt_test" in text and "try=2" in text
    assert "2 tests failed" in text


@pytest.mark.unit
def test_webhook_errors_are_logged_not_raised(webhook: str) -> None:
    _Sink.status = 500
    assert alerts.post(Settings.from_env({"ALERT_WEBHOOK_URL": webhook}), "x") is False
    assert alerts.post(Settings.from_env({"ALERT_WEBHOOK_URL": "http://127.0.0.1:9/none"}), "x") is False
    assert alerts.post(Settings.from_env({}), "x") is False  # not configured: nothing sent


@pytest.mark.unit
def test_deadline_callback_posts_from_the_triggerer(webhook: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from shoplake.config import get_settings

    monkeypatch.setenv("ALERT_WEBHOOK_URL", webhook)
    get_settings.cache_clear()
    try:
        asyncio.run(alerts.deadline_missed(context=None, dag_id="ml_pipeline_orchestration"))
    finally:
        monkeypatch.delenv("ALERT_WEBHOOK_URL")
        get_settings.cache_clear()
    assert _Sink.received == [{"text": "[shoplake] deadline missed: dag=ml_pipeline_orchestration"}]


@pytest.mark.unit
def test_deadline_alert_is_measured_from_queueing_with_our_callback() -> None:
    from shoplake.airflow.defaults import deadline

    alert = deadline("dbt_orchestration", timedelta(hours=1))
    assert type(alert.reference).__name__ == "DagRunQueuedAtDeadline"
    assert alert.interval == timedelta(hours=1)
    assert alert.callback.serialize()["path"] == "shoplake.airflow.alerts.deadline_missed"
    assert alert.callback.serialize()["kwargs"] == {"dag_id": "dbt_orchestration"}
