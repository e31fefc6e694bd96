# Thin aliases: every target installs what it needs first (scripts/bootstrap.sh is idempotent and fast when
# everything is already there). Logic lives in the `shoplake` package, not here.
SHELL := /bin/bash
UV_RUN := uv run --frozen

.PHONY: bootstrap demo test test-unit lint bench bench-quick up down status

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
	$(UV_RUN) python -m bench

bench-quick: bootstrap
	$(UV_RUN) python -m bench --quick

up: bootstrap
	$(UV_RUN) shoplake up

down:
	$(UV_RUN) shoplake down

status:
	$(UV_RUN) shoplake status
