# The two commands of the README: `make dev` runs the platform, `make test` runs every test.
.PHONY: setup dev test lint chaos

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

# The chaos suite at full size (CI runs a short version of each scenario within `make test`).
chaos:
	scripts/setup.sh --test
	CHAOS_FULL=1 .venv/bin/pytest -m chaos -s
