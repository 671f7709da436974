#!/usr/bin/env bash
# The sanitizer pass of CI: builds parlab._core with AddressSanitizer and
# UndefinedBehaviorSanitizer into build/sanitize/ (the in-place extension is
# left alone), then runs the C kernel tests and the binding tests against that
# build. Any sanitizer report fails, in the test process or in any child
# (forked, spawned, or the C kernels' driver). The experiments, the command
# line and the notebooks are left out: they add time, not C paths.
# Uses the virtual environment of scripts/test.sh (PARLAB_VENV, default .venv).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$(cd "${PARLAB_VENV:-.venv}" && pwd)/bin/python
OUT=$ROOT/build/sanitize
source scripts/_separate_build.sh

SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
# setuptools adds CFLAGS and LDFLAGS to the extension's build; the C kernel
# tests add them to their driver's.
export CFLAGS="$SAN" LDFLAGS="$SAN"
separate_build "$OUT"
mkdir -p "$OUT/logs"

# Python itself is not instrumented: the ASan runtime must be loaded first,
# and libstdc++ with it, so that ASan finds the C++ exception functions that
# it wraps (C++ extensions such as matplotlib's throw and catch internally).
# PYTHONMALLOC=malloc lets ASan see Python's own objects too; CPython leaves
# memory to the OS at exit, so leak detection would only report that. An
# allocation too large to satisfy returns NULL, so that the binding's
# MemoryError paths run instead of ASan stopping; a smaller quarantine of
# freed memory keeps the RSS test's measurements flat. Reports go to files,
# so that none from a child process can go unnoticed.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
export PYTHONMALLOC=malloc
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:allocator_may_return_null=1:quarantine_size_mb=32:log_path=$OUT/logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$OUT/logs/ubsan"

status=0
pytest_on_build "$OUT" -m sanitize "$TESTS" "$@" || status=$?

if compgen -G "$OUT/logs/*" > /dev/null; then
    echo "sanitize.sh: sanitizer reports:" >&2
    cat "$OUT"/logs/* >&2
    exit 1
fi
exit "$status"
