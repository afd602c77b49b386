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
.venv/bin/python -m pip install --quiet -e "./client[verify,qt,otel]" -e "./server[noise]" -e "./examples[gui]" \
    -e ./integrations/napari-consentry --group test

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
# The Qt tests (tests/client/test_qt*.py) run PySide6 on its offscreen platform: its wheels bring Qt, not the
# system libraries Qt's GUI and platform plugins are linked against (EGL/GL, xkbcommon, fontconfig, freetype, D-Bus,
# GLib, X11). Install each one that is missing.
if ! compgen -G "/usr/lib/*-linux-gnu/libEGL.so.1" > /dev/null; then apt_install libegl1; fi
if ! compgen -G "/usr/lib/*-linux-gnu/libGL.so.1" > /dev/null; then apt_install libgl1; fi
if ! compgen -G "/usr/lib/*-linux-gnu/libxkbcommon.so.0" > /dev/null; then apt_install libxkbcommon0; fi
if ! compgen -G "/usr/lib/*-linux-gnu/libfontconfig.so.1" > /dev/null; then apt_install libfontconfig1; fi
if ! compgen -G "/usr/lib/*-linux-gnu/libfreetype.so.6" > /dev/null; then apt_install libfreetype6; fi
if ! compgen -G "/usr/lib/*-linux-gnu/libdbus-1.so.3" > /dev/null; then apt_install libdbus-1-3; fi
if ! compgen -G "/usr/lib/*-linux-gnu/libglib-2.0.so.0" > /dev/null; then apt_install libglib2.0-0; fi
if ! compgen -G "/usr/lib/*-linux-gnu/libX11.so.6" > /dev/null; then apt_install libx11-6; fi
# The napari integration's tests (tests/integrations/test_napari_consentry.py) run the real napari viewer, whose
# canvas needs OpenGL, which the offscreen platform does not give: Xvfb (started by the tests on a free display),
# Mesa's software renderer, and the libraries Qt's xcb platform plugin (libqxcb.so) is linked against.
if ! command -v Xvfb > /dev/null; then apt_install xvfb; fi
if ! compgen -G "/usr/lib/*-linux-gnu/dri/*swrast_dri.so" > /dev/null; then apt_install libgl1-mesa-dri; fi
for pair in libxcb-cursor.so.0:libxcb-cursor0 libxcb-icccm.so.4:libxcb-icccm4 libxcb-image.so.0:libxcb-image0 \
    libxcb-keysyms.so.1:libxcb-keysyms1 libxcb-randr.so.0:libxcb-randr0 libxcb-render-util.so.0:libxcb-render-util0 \
    libxcb-shape.so.0:libxcb-shape0 libxcb-shm.so.0:libxcb-shm0 libxcb-sync.so.1:libxcb-sync1 \
    libxcb-xfixes.so.0:libxcb-xfixes0 libxcb-xkb.so.1:libxcb-xkb1 libxcb-util.so.1:libxcb-util1 \
    libX11-xcb.so.1:libx11-xcb1 libxkbcommon-x11.so.0:libxkbcommon-x11-0; do
    if ! compgen -G "/usr/lib/*-linux-gnu/${pair%%:*}" > /dev/null; then apt_install "${pair#*:}"; fi
done

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy client/src integrations/napari-consentry/src
.venv/bin/mypy --python-version 3.11 server/src examples
.venv/bin/python -m pytest --cov --cov-report=term "$@"
