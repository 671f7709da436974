#!/usr/bin/env bash
# A free-threaded CPython built with ThreadSanitizer (--disable-gil
# --with-thread-sanitizer) and a virtual environment with parlab's
# dependencies and test dependencies in it, for scripts/ci-tsan.sh (which
# builds parlab itself with -fsanitize=thread, apart from the checkout).
#
# The interpreter is built from the same Debian source package as the one of
# scripts/python-ft.sh (scripts/_python_build.sh), into
# ~/.cache/parlab/python-<version>t-tsan, once (about 7 minutes on 2 cores;
# delete that folder to rebuild), with CPython's own suppressions file
# (Tools/tsan/suppressions_free_threading.txt of the release tarball, which is
# removed after the build) kept beside it in share/parlab/. PARLAB_CACHE
# moves the cache, PARLAB_TSAN_VENV the venv (default: venv-tsan in the cache,
# beside the interpreter: it holds only parlab's dependencies, which a fresh
# clone, as CI's, reuses).
#
# Compiler: clang (Debian's clang package, installed if missing), as
# CPython's own TSan CI job uses: GCC's ThreadSanitizer does not instrument
# atomic_thread_fence (gcc warns -Wtsan), which the free-threaded runtime and
# its mimalloc use, so a GCC build would report races that are none. parlab
# is then built with the same clang (the interpreter's CC), whose TSan runtime
# lives in the python executable itself.
#
# Prints the venv's python as its last line.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
source scripts/_lib.sh
source scripts/_python_build.sh
VENV=${PARLAB_TSAN_VENV:-$CACHE/venv-tsan}
mkdir -p "$CACHE"

# CPython's suppressions for its own races, relative to the install.
SUPPRESSIONS=share/parlab/suppressions_free_threading.txt

build_interpreter() {
    ensure_build_deps clang
    local work=$CACHE/build-tsan supp
    prepare_source "$work"
    supp=$SRC_TOP/Tools/tsan/suppressions_free_threading.txt
    # The build runs the new interpreter (setup of the stdlib, compileall,
    # ensurepip): CPython's own races there must not stop it; they go to
    # make.log, not into any test's verdict.
    TSAN_OPTIONS="suppressions=$supp exitcode=0" \
        build_into "$SRC_TOP" "$SRC_VER" t t-tsan --with-thread-sanitizer CC=clang
    mkdir -p "$CACHE/python-${SRC_VER}t-tsan/$(dirname "$SUPPRESSIONS")"
    cp "$supp" "$CACHE/python-${SRC_VER}t-tsan/$SUPPRESSIONS"
    rm -rf "$work"
}

start=$SECONDS
prefix=$(built_prefix t-tsan) && [ -f "$prefix/$SUPPRESSIONS" ] ||
    { build_interpreter; prefix=$(built_prefix t-tsan); }
ver=$(cat "$prefix/.parlab-built")
log "interpreter $prefix ($((SECONDS - start)) s)"

# pip and the interpreter's own races (CPython's file names them): not what
# the TSan pass checks, and they must not fail the installs.
export TSAN_OPTIONS="suppressions=$prefix/$SUPPRESSIONS exitcode=0"
venv "$VENV" "$prefix/bin/python${ver}t"
PY=$VENV/bin/python
# What the tests import: parlab's dependencies and its test-base extra (as in
# scripts/python-ft.sh: numba has no free-threaded build) and
# pytest-run-parallel, read from pyproject.toml, without parlab itself (its
# TSan build is made apart from the checkout's in-place extension, which
# .venv-ft's cp313t build would share). Every dependency from a wheel
# (PIP_PREFER_BINARY: see python-ft.sh): NumPy's and SciPy's are not
# instrumented, which scripts/tsan-suppressions.txt allows for. Only when
# the list changed. pip under TSan takes 10 to 16 minutes for these: where
# scripts/python-ft.sh has built the same release without TSan, that
# interpreter installs them into this venv's site-packages (the same ABI,
# cp313t, and the same bytecode, compiled once), in about a minute.
reqs=$("$PY" -c 'import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["test-base"]))')
reqs+=$'\npytest-run-parallel>=0.4'
if [ "$(cat "$VENV/.parlab-reqs" 2>/dev/null)" != "$reqs" ]; then
    installer=("$PY" -m pip install)
    plain=$(built_prefix t) && [ "$(full_version "$plain/bin/python${ver}t")" = "$(full_version "$PY")" ] &&
        installer=("$plain/bin/python${ver}t" -m pip install --root-user-action=ignore --upgrade --target
                   "$("$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')")
    PIP_PREFER_BINARY=1 "${installer[@]}" --quiet -r /dev/stdin <<< "$reqs"
    "$PY" -m pip check
    echo "$reqs" > "$VENV/.parlab-reqs"
fi
log "venv $VENV ready ($((SECONDS - start)) s)"
echo "$PY"
