# The two commands of the README: `make dev` runs the platform, `make test` runs every test.
.PHONY: setup dev test lint

setup:
	scripts/setup.sh

dev: setup
	.venv/bin/telephony dev

test:
	scripts/setup.sh --test
	.venv/bin/pytest

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
