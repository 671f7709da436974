#!/usr/bin/env bash
# Sets up a fresh virtual environment with parlab, then reproduces every
# lecture experiment and writes the report (default: parlab-report/).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PARLAB_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet .
"$VENV/bin/python" -m parlab reproduce "$@"
