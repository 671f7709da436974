#!/usr/bin/env bash
# CI: today's CPython. scripts/python-current.sh assembles 3.15 from Debian
# sid's binary packages once (cached in ~/.cache/parlab) and makes
# .venv-3.15; the whole suite runs there, notebooks included. (3.14, and
# every other CPython from 3.10, build a wheel and run the fast subset from
# it: scripts/ci-matrix.sh.) Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash scripts/python-current.sh 3.15 | tail -1)
"$PY" -m pytest -p no:cacheprovider "$@"
