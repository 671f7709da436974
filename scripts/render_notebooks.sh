#!/usr/bin/env bash
# Renders the notebooks as students see them: executes each one (at tiny
# scale unless PARLAB_SCALE says otherwise) and writes, into OUT_DIR
# (default build/notebooks), the executed notebook and its HTML page.
#
#   bash scripts/render_notebooks.sh [OUT_DIR] [NOTEBOOK ...]
#
# Needs parlab with its test extras (nbconvert, ipykernel) in $PYTHON, default
# .venv/bin/python. A cell that raises stops the run, naming the notebook;
# tests/test_rendered_notebooks.py opens the pages in a browser.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
OUT=${1:-$ROOT/build/notebooks}
shift || true
if [ "$#" -eq 0 ]; then
    set -- "$ROOT"/notebooks/*.ipynb
fi
export PARLAB_SCALE=${PARLAB_SCALE:-tiny}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)  # each notebook runs from its own folder
for nb in "$@"; do
    name=$(basename "$nb" .ipynb)
    # Executed from the notebooks folder, as Jupyter would run it.
    (cd "$(dirname "$nb")" && "$PYTHON" -m nbconvert --to notebook --execute \
        --ExecutePreprocessor.timeout=600 --ExecutePreprocessor.kernel_name=python3 \
        --output-dir "$OUT" --output "$name" --log-level WARN "$(basename "$nb")")
    "$PYTHON" -m nbconvert --to html --output-dir "$OUT" --log-level WARN "$OUT/$name.ipynb"
    echo "rendered $OUT/$name.html"
done
