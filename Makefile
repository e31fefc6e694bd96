# Thin aliases: every target installs what it needs first (scripts/bootstrap.sh is idempotent and fast when
# everything is already there). Logic lives in the `shoplake` package, not here.
SHELL := /bin/bash
UV_RUN := uv run --frozen

.PHONY: bootstrap demo test test-unit lint bench up down status

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	$(UV_RUN) shoplake demo

test: bootstrap
	$(UV_RUN) pytest -m "unit or integration or e2e" -p no:cacheprovider --durations=25

test-unit: bootstrap
	$(UV_RUN) pytest -m unit -p no:cacheprovider

lint: bootstrap
	$(UV_RUN) ruff check
	$(UV_RUN) ruff format --check
	$(UV_RUN) mypy

bench: bootstrap
	@set -e; for script in bench/bench_*.py; do echo "== $$script"; $(UV_RUN) python "$$script"; done

up: bootstrap
	$(UV_RUN) shoplake up

down:
	$(UV_RUN) shoplake down

status:
	$(UV_RUN) shoplake status
