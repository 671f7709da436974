#!/usr/bin/env bash
# Sets up a fresh virtual environment with parlab, then reproduces every
# lecture experiment and writes the report (default: parlab-report/).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_lib.sh
VENV=${PARLAB_VENV:-.venv}
venv "$VENV"
install_parlab "$VENV" ".[numba]"
"$VENV/bin/python" -m parlab reproduce "$@"
