"""`.env.example` and the configuration reference are generated from the settings model and kept current."""

from __future__ import annotations

import re

import pytest

from shoplake.config import Settings
from shoplake.config.reference import DOCS, ENV_EXAMPLE, docs_page, env_example, main

pytestmark = pytest.mark.unit


def test_generated_files_are_current() -> None:
    assert ENV_EXAMPLE.read_text() == env_example(), "run: python -m shoplake.config.reference"
    assert DOCS.read_text() == docs_page(DOCS.read_text()), "run: python -m shoplake.config.reference"
    assert main(["--check"]) == 0


def test_env_example_lists_exactly_the_variables_the_model_reads() -> None:
    documented = re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", env_example(), re.MULTILINE)
    assert len(documented) == len(set(documented))
    assert set(documented) == set(Settings.from_env({}).redacted())


def test_env_example_as_a_dotenv_file_gives_the_defaults() -> None:
    """Copied to .env unchanged, the template must not change a single effective value."""
    from dotenv import dotenv_values

    values = {k: v for k, v in dotenv_values(ENV_EXAMPLE).items() if v is not None}
    assert "KAFKA_TOPIC" in values and not any("#" in v for v in values.values())
    assert Settings.from_env(values).redacted() == Settings.from_env({}).redacted()
