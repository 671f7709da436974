#!/usr/bin/env bash
# Downloads into .whl/ (ignored by git) the wheels that scripts/device-scaling.sh
# needs on the device machine, which reaches no package index: Dask and its
# dependencies that machine's Python 3.12 lacks, and a setuptools new enough
# to read pyproject.toml. The device tool carries the folder: name .whl in carry.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    "dask[distributed]" distributed partd locket tornado tblib zict "setuptools>=77"
ls .whl
