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
rm -rf "$OUT"
mkdir -p "$OUT/logs"

SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
# setuptools adds CFLAGS and LDFLAGS to the extension's build; the C kernel
# tests add them to their driver's.
export CFLAGS="$SAN" LDFLAGS="$SAN"
# A wheel built from a copy of the sources: nothing compiled in the checkout
# (its build/ or in-place extension) is reused or overwritten. pip builds it
# in an isolated environment, as `pip install` does (setuptools and numpy from
# PyPI or pip's cache).
mkdir -p "$OUT/src"
cp -r csrc parlab setup.py pyproject.toml README.md MANIFEST.in "$OUT/src/"
rm -f "$OUT"/src/parlab/*.so
PARLAB_WERROR=1 "$PY" -m pip wheel --quiet --no-deps --wheel-dir "$OUT/wheel" "$OUT/src" \
    > "$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
"$PY" -m zipfile -e "$OUT"/wheel/parlab-*.whl "$OUT/lib"

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

# From inside the build, `import parlab` finds the instrumented package first.
cd "$OUT/lib"
"$PY" -c 'import parlab._core, sys; assert parlab._core.__file__.startswith(sys.argv[1]), parlab._core.__file__' "$OUT/lib/"
TESTS=()
for name in c_kernels api bad_input cdist counter gil hardening huge_counts interrupt leaks \
            montecarlo stress trace; do
    TESTS+=("$ROOT/tests/test_$name.py")
done
status=0
"$PY" -m pytest -p no:cacheprovider -c "$ROOT/pyproject.toml" --rootdir "$ROOT" \
    "${TESTS[@]}" "$@" || status=$?

if compgen -G "$OUT/logs/*" > /dev/null; then
    echo "sanitize.sh: sanitizer reports:" >&2
    cat "$OUT"/logs/* >&2
    exit 1
fi
exit "$status"
