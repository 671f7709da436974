#!/usr/bin/env bash
# CI: the C kernel tests (tests/test_c_kernels.py) with the driver built by
# other compilers for other CPUs: cross-built for aarch64 by gcc and by clang
# and run under qemu-aarch64-static, on every path it lists (scalar and neon),
# and built by clang for this machine. Each build's cdist bits are compared
# with those of this machine's default compiler. Installs the cross tools with
# apt where missing; CI=true makes a missing tool fail the tests, not skip them.
# Uses the virtual environment of scripts/test.sh (PARLAB_VENV, default .venv).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PARLAB_VENV:-.venv}/bin/python
source scripts/_lib.sh
debs gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static clang

CI=true PARLAB_DRIVER_TOOLCHAINS="aarch64-gcc aarch64-clang clang" \
    "$PY" -m pytest -p no:cacheprovider -q tests/test_c_kernels.py "$@"
