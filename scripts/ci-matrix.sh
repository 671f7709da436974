#!/usr/bin/env bash
# CI: every CPython from 3.10 to 3.15 builds a -Werror wheel, repairs it with
# auditwheel and runs the fast subset from it (scripts/matrix.sh). 3.14 and
# 3.15 are assembled first, once, from Debian sid's binary packages
# (scripts/python-current.sh; the other lane may be assembling 3.15 for its
# whole suite: the script waits for it).
set -euo pipefail
cd "$(dirname "$0")/.."
for version in 3.14 3.15; do
    bash scripts/python-current.sh --no-venv "$version" > /dev/null
done
bash scripts/matrix.sh
