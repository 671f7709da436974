#!/usr/bin/env bash
# CI: the quick reproduce on one core (reproduce --cores 1), as a one-vCPU
# container runs it. Every lesson must hold, or say why it cannot be shown
# here (skipped, inconclusive): a lesson that `fails` on one core has a rule
# written for more cores, and fails this step, as does a broken experiment.
# Uses the virtual environment of scripts/test.sh (PARLAB_VENV, default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(cd "${PARLAB_VENV:-.venv}" && pwd)/bin/python
OUT=build/one-core
rm -rf "$OUT"
mkdir -p build
"$PY" -m parlab reproduce --cores 1 --out "$OUT" > "$OUT.log" || { cat "$OUT.log"; exit 1; }
tail -1 "$OUT.log"
"$PY" - "$OUT/lessons.csv" <<'PY'
import sys

import pandas as pd

lessons = pd.read_csv(sys.argv[1])
failed = lessons[lessons.verdict == "fails"]
for row in failed.itertuples():
    print(f"ci-one-core.sh: {row.experiment} fails on one core: {row.lesson}: {row.observed}",
          file=sys.stderr)
sys.exit(1 if len(failed) else 0)
PY
