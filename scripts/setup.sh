#!/usr/bin/env bash
# Installs everything the project needs into .venv (and, with --test, the Debian packages the tests use).
# Safe to run again: it reinstalls Python packages only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test_packages=false
[ "${1:-}" = "--test" ] && want_test_packages=true

apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "setup: cannot install Debian packages $* (not root, no sudo); tests needing them will skip" >&2
  fi
}

if $want_test_packages && command -v apt-get >/dev/null 2>&1; then
  missing=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  [ -x /usr/bin/chromium ] || missing+=(chromium)  # the console page's browser tests
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt_install "${missing[@]}"
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv

stamp=.venv/.setup-stamp
fingerprint=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$fingerprint" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$fingerprint" > "$stamp"
fi
