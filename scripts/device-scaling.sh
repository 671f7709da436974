#!/usr/bin/env bash
# The lessons and the thread benchmarks on a bigger machine, in one call: the
# 16-core machine the `device` tool lends (issue 22), or any Linux machine
# with Python 3.10+, NumPy, SciPy, pandas, matplotlib, joblib, tqdm,
# threadpoolctl and psutil installed, and no network.
#
#   bash scripts/device-scaling.sh [--bench] [--parallel] N [N ...]
#
# For each N: `python -m parlab reproduce --cores N` (quick scale), its
# lessons.csv kept as lessons-cN.csv; a table of the verdicts by N
# (verdicts.txt) at the end. --bench first runs benchmarks/bench_core.py from
# 1 thread to all the usable cores. --parallel runs the reproduces at once, each
# on cores of its own (N=1,2,4,8 fit 15 of 16): quicker, though they share the
# memory and caches. What the machine lacks comes from wheels in .whl/ when
# there (scripts/device-wheels.sh downloads them here: dask, distributed and
# theirs, a setuptools new enough for pyproject.toml); the extension is built
# in place. Everything goes to $OUT (default build/device): at most 8 files.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/device}
PY=${PYTHON:-python3}
BENCH=0 PARALLEL=0
while [ "${1:-}" != "${1#--}" ]; do
    case $1 in --bench) BENCH=1 ;; --parallel) PARALLEL=1 ;;
        *) echo "device-scaling.sh: unknown option $1" >&2; exit 2 ;; esac
    shift
done
[ $# -gt 0 ] || { echo "usage: device-scaling.sh [--bench] [--parallel] N [N ...]" >&2; exit 2; }
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/parlab-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/parlab-site
fi
"$PY" setup.py -q build_ext --inplace > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$PY" -m parlab info | tee "$OUT/info.txt"
cores=$("$PY" -c 'from parlab._cores import usable_cores; print(usable_cores())')

if [ "$BENCH" = 1 ]; then
    counts=$("$PY" -c "print(*sorted({1, 2, 4, 8, 16, 32, 64, $cores} & set(range(1, $cores + 1))))")
    (cd benchmarks && "$PY" bench_core.py --threads $counts) 2>&1 | tee "$OUT/bench_core.txt"
fi

# Cores of their own for each run with --parallel: the next N of the mask.
mask=($("$PY" -c 'import os; print(*sorted(os.sched_getaffinity(0)))'))
next=0 pids=()
for n in "$@"; do
    log=build/device-c$n.log
    mkdir -p build
    if [ "$PARALLEL" = 1 ]; then
        [ $((next + n)) -le ${#mask[@]} ] || { echo "device-scaling.sh: --parallel: $* need more than $cores cores" >&2; exit 2; }
        ids=$(IFS=,; echo "${mask[*]:next:n}")
        next=$((next + n))
        taskset -c "$ids" "$PY" -m parlab reproduce --cores "$n" --out "build/device-c$n" > "$log" 2>&1 &
        pids+=($!)
    else
        "$PY" -m parlab reproduce --cores "$n" --out "build/device-c$n" > "$log" 2>&1
    fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
for n in "$@"; do
    tail -1 "build/device-c$n.log"
    cp "build/device-c$n/lessons.csv" "$OUT/lessons-c$n.csv" 2>/dev/null ||
        { echo "device-scaling.sh: --cores $n wrote no lessons:"; tail -30 "build/device-c$n.log"; }
done
"$PY" - "$OUT" "$@" <<'PY' | tee "$OUT/verdicts.txt"
import sys
from pathlib import Path

import pandas as pd

out, counts = Path(sys.argv[1]), sys.argv[2:]
columns = {}
for n in counts:
    path = out / f"lessons-c{n}.csv"
    if path.exists():
        lessons = pd.read_csv(path)
        columns[f"{n} cores"] = lessons.set_index(["experiment", "lesson"]).verdict
table = pd.DataFrame(columns)
with pd.option_context("display.width", 250, "display.max_colwidth", 70,
                       "display.max_rows", None):
    print(table.to_string())
    print()
    print(table.apply(lambda c: c.value_counts()).fillna(0).astype(int).to_string())
PY
