"""The suite runs on its own platform: no location or port it uses is one of the user's platform."""

from __future__ import annotations

import pytest

from shoplake.config import Settings, get_settings
from tests.conftest import USER_ENV

pytestmark = pytest.mark.unit


def _ports(s: Settings) -> set[int]:
    return {
        s.kafka.port,
        s.kafka.controller_port,
        s.registry.port,
        s.registry.internal_port,
        s.registry.management_port,
        s.postgres.port,
        s.mlflow.port,
        s.airflow.api_port,
        s.spark.master_port,
        s.spark.master_webui_port,
    }


def test_the_suite_never_points_at_the_users_platform() -> None:
    user, ours = Settings.from_env(USER_ENV), get_settings()
    assert ours.home != user.home
    assert user.home not in ours.lake.base_path.parents and ours.lake.base_path != user.lake.base_path
    assert ours.mlflow.artifact_root.is_relative_to(ours.home) and ours.airflow.home.is_relative_to(ours.home)
    assert _ports(ours).isdisjoint(_ports(user))
    assert len(_ports(ours)) == len(_ports(user)) == 10
