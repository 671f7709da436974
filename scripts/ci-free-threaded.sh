#!/usr/bin/env bash
# CI: the test suite on free-threaded CPython. scripts/python-ft.sh builds the
# interpreter once (cached in ~/.cache/parlab) and makes .venv-ft; then the
# whole suite runs on it with the GIL off (numba's tests skip: it has no
# free-threaded build), and the tests marked parallel (kernels, counter,
# native threads, Dask) run once more under pytest-run-parallel, every test
# in 4 threads at once, to find what is not thread-safe without a GIL. Tests
# that must run alone are marked thread_unsafe, each with its reason: the
# plain run has run them, so the second skips them.
# python-ft.sh --twin also builds the same release with the GIL (.venv-gil),
# which L6.4 weighs the free-threaded build against; it and the normal
# interpreter of scripts/test.sh (.venv), if there, are named in
# PARLAB_PYTHONS for the two-interpreter report's test and L6.4.
# Extra arguments go to the first pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash scripts/python-ft.sh --twin | tail -1)
PARLAB_PYTHONS=$PWD/.venv-gil/bin/python
[ -x .venv/bin/python ] && PARLAB_PYTHONS=$PWD/.venv/bin/python:$PARLAB_PYTHONS
export PARLAB_PYTHONS
"$PY" -m pytest -p no:cacheprovider "$@"
"$PY" -m pytest -p no:cacheprovider -q -m parallel --parallel-threads=4 --skip-thread-unsafe=True
