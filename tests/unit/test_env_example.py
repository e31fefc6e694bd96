"""`.env.example` must document exactly the variables `config.py` reads, so users can trust it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A variable is read through one of Settings.from_env's helpers: get/typed/port/url/fraction/e.get("NAME", ...).
_READ = re.compile(r'\b(?:get|typed|port|url|fraction|e\.get)\(\s*"([A-Z][A-Z0-9_]+)"')
_DOC = re.compile(r"^#?\s*([A-Z][A-Z0-9_]+)=", re.MULTILINE)


@pytest.mark.unit
def test_env_example_lists_every_setting() -> None:
    read = set(_READ.findall((ROOT / "src/shoplake/config.py").read_text()))
    documented = set(_DOC.findall((ROOT / ".env.example").read_text()))
    assert len(read) > 20, "the pattern no longer finds the settings: update this test with config.py"
    assert read - documented == set(), "settings missing from .env.example"
    assert documented - read == set(), ".env.example documents variables config.py does not read"
