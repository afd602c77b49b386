#!/usr/bin/env bash
# Install everything the test suite needs into ./.venv, then run the whole suite: lint, formatting, types,
# and the tests with coverage. Extra arguments go to pytest (for example: bash scripts/test.sh -k wire).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade "pip>=25.1"
.venv/bin/python -m pip install --quiet -e "./client[verify]" -e "./server[noise]" -e ./examples --group test

# Two kinds of tests need programs from the distribution, which they start themselves: the storage tests a real
# PostgreSQL server (tests/support/postgres.py), the dashboard's browser tests Debian's Chromium through
# Playwright (which cannot download browsers here). Install them when they are missing.
apt_install() {
    local as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        as_root=(sudo)
    fi
    echo "installing $1 for the tests" >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" > /dev/null \
        || { "${as_root[@]}" apt-get update -qq > /dev/null \
             && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" > /dev/null; }
}
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then
    apt_install postgresql
fi
if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy client/src
.venv/bin/mypy --python-version 3.11 server/src examples
.venv/bin/python -m pytest --cov --cov-report=term "$@"
