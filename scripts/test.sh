#!/usr/bin/env bash
# Sets up a fresh virtual environment with parlab and its test extras, then
# runs the whole test suite (kernels, experiments at tiny scale, CLI, notebooks).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PARLAB_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
PARLAB_WERROR=1 "$VENV/bin/python" -m pip install --quiet ".[test]"
# The pytest script (not `python -m pytest`) keeps the source tree off sys.path,
# so the tests import the installed, compiled package.
"$VENV/bin/pytest" -p no:cacheprovider "$@"
