"""MLflow dies while a model trains: the task fails with a clear error, production stays where it was.

A first candidate is put behind ``@production``; then a second training runs and the tracking server is
SIGKILLed once the data is split (before the model is fitted and recorded). Training must raise
:class:`MlflowUnavailableError`, the alias must still name the first version and no version may have been
added. A second attempt with MLflow back (what Airflow's task retries do) records a new candidate, which
still does not move ``@production`` - only the deploy task does that. Training started while MLflow is
down fails within seconds, before any data is read.
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.ml import registry, sample_data, workflow
from shoplake.ml.extract import Window, silver_path
from tests.integration import faults

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

START = datetime(2026, 2, 2, tzinfo=UTC)
DAYS = 20
WINDOW = Window(START, START + timedelta(days=DAYS))
N = 40_000


@pytest.fixture
def settings(stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    tag = uuid.uuid4().hex[:8]
    ours = stack.with_env(DELTA_BASE_PATH=tmp_path, ML_MODEL_NAME=f"faults-{tag}", ML_EXPERIMENT=f"faults-{tag}")
    batches = sample_data.silver_batches(N, 42, START, span=timedelta(days=DAYS), run_key="faults-ml")
    assert sample_data.write_silver_delta(silver_path(ours), batches) == N
    # MLflow's own client retries a refused connection for minutes; one attempt keeps the test short
    # (the product's behaviour is the same, only later).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    yield ours
    faults.start(stack, "mlflow")


def production(settings: Settings) -> str | None:
    version = registry.production_version(registry.client(settings), settings.ml.model_name)
    return None if version is None else str(version.version)


def versions(settings: Settings) -> set[str]:
    found = registry.client(settings).search_model_versions(f"name = '{settings.ml.model_name}'")
    return {str(v.version) for v in found}


def test_mlflow_killed_during_training_fails_clearly_and_leaves_production(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    first = workflow.train_and_evaluate(settings, WINDOW, seed=1)
    registry.client(settings).set_registered_model_alias(
        settings.ml.model_name, registry.PRODUCTION_ALIAS, first.version
    )

    caplog.set_level(logging.INFO, logger="shoplake.ml.workflow")
    caplog.clear()  # the first training's own "split" record must not be mistaken for the second one's
    outcome: list[BaseException | workflow.TrainingResult] = []

    def train() -> None:
        try:
            outcome.append(workflow.train_and_evaluate(settings, WINDOW, seed=2))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=train, daemon=True)
    worker.start()
    faults.wait_for(
        lambda: any(r.getMessage().startswith("split ") for r in caplog.records) or not worker.is_alive(),
        "training to split its data",
    )
    faults.stop(settings, "mlflow", signal.SIGKILL)
    worker.join(300)
    assert not worker.is_alive()
    (error,) = outcome
    assert isinstance(error, workflow.MlflowUnavailableError), error
    assert settings.mlflow.tracking_uri in str(error) and "production alias is unchanged" in str(error)

    with pytest.raises(workflow.MlflowUnavailableError, match="nothing was trained"):  # fails in seconds now
        workflow.train_and_evaluate(settings, WINDOW, seed=2)

    faults.start(settings, "mlflow")
    assert production(settings) == first.version
    assert versions(settings) == {first.version}  # nothing half-registered

    retried = workflow.train_and_evaluate(settings, WINDOW, seed=2)  # Airflow's retry of the task
    assert versions(settings) == {first.version, retried.version}
    assert production(settings) == first.version  # training alone never moves the alias
