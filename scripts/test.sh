#!/usr/bin/env bash
# Sets up a fresh virtual environment with parlab and its test extras, then
# runs the whole test suite (kernels, experiments at tiny scale, CLI, notebooks).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_lib.sh
VENV=${PARLAB_VENV:-.venv}
venv "$VENV"
install_parlab "$VENV" ".[test]"
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
