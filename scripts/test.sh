#!/usr/bin/env bash
# Sets up a fresh virtual environment with parlab and its test extras, then
# runs the whole test suite (kernels, experiments at tiny scale, CLI, notebooks).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PARLAB_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# Editable: the extension is compiled into the source tree, so `python -m parlab`
# and the tests import the same package from here or from anywhere else.
PARLAB_WERROR=1 "$VENV/bin/python" -m pip install --quiet -e ".[test]"
"$VENV/bin/python" -m pip check
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
