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

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy client/src
.venv/bin/mypy --python-version 3.11 server/src examples
.venv/bin/python -m pytest --cov --cov-report=term "$@"
