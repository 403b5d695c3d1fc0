# The two commands of the README: `make dev` runs the platform, `make test` runs every test.
.PHONY: setup dev test lint chaos

setup:
	scripts/setup.sh

dev: setup
	.venv/bin/telephony dev

# Every core runs tests (pytest-xdist); a module's tests stay on one process, so its fixtures are built once.
test:
	scripts/setup.sh --test
	.venv/bin/pytest -n auto --dist loadfile

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# The chaos suite at full size (CI runs a short version of each scenario within `make test`).
chaos:
	scripts/setup.sh --test
	CHAOS_FULL=1 .venv/bin/pytest -m chaos -s
