#!/usr/bin/env bash
# Sets up a fresh virtual environment with parlab, then reproduces every
# lecture experiment and writes the report (default: parlab-report/).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PARLAB_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# Editable: the extension is compiled into the source tree, so `python -m parlab`
# works from here as well as from anywhere else.
"$VENV/bin/python" -m pip install --quiet -e ".[numba]"
"$VENV/bin/python" -m parlab reproduce "$@"
