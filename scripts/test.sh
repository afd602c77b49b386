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
.venv/bin/python -m pip install --quiet -e ./client -e "./server[noise]" -e ./examples --group test

# The storage tests run against a real PostgreSQL server that they start themselves (tests/support/postgres.py),
# from the distribution's packages: install them when they are missing.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then
    echo "installing PostgreSQL for the storage tests" >&2
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        as_root=(sudo)
    fi
    install_postgresql() {
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null
    }
    install_postgresql || { "${as_root[@]}" apt-get update -qq > /dev/null && install_postgresql; }
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy client/src
.venv/bin/mypy --python-version 3.11 server/src examples
.venv/bin/python -m pytest --cov --cov-report=term "$@"
