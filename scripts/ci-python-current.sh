#!/usr/bin/env bash
# CI: today's CPythons. scripts/python-current.sh assembles 3.15 and 3.14 from
# Debian sid's binary packages once (cached in ~/.cache/parlab) and makes
# .venv-3.15; the whole suite runs there, notebooks included. Then
# scripts/matrix.sh builds a -Werror wheel on every CPython from 3.10 to 3.15,
# repairs it with auditwheel and runs the fast subset from it: that covers
# 3.14 (and 3.10, 3.12, 3.13) without a second whole suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/python-current.sh --no-venv 3.14 > /dev/null
PY=$(bash scripts/python-current.sh 3.15 | tail -1)
"$PY" -m pytest -p no:cacheprovider "$@"
bash scripts/matrix.sh
