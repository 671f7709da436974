#!/usr/bin/env bash
# A free-threaded CPython (built with --disable-gil) and a virtual environment
# with parlab in it, for the free-threaded CI pass and for anyone who wants to
# see the lectures without a GIL.
#
# The interpreter is built from the upstream source that Debian's source
# packages carry (scripts/_python_build.sh): CPython 3.15 or 3.14 from Debian
# testing (forky), then unstable (sid), when the archive serves it, else 3.13
# from forky or trixie. apt works from a private state directory, so the
# machine's own apt sources and lists stay as they are. The build is installed into ~/.cache/parlab/python-<version>t and is reused
# on later runs (a stamp file marks a finished install); delete that folder to
# rebuild. PARLAB_CACHE moves the cache, PARLAB_FT_VENV the venv (default
# .venv-ft in the checkout).
#
# With --twin it also builds the same source the same way with the GIL
# (~/.cache/parlab/python-<version>, as long again the first time) and makes
# .venv-gil (PARLAB_GIL_VENV) with parlab in it: the normal build L6.4 weighs
# the free-threaded one against. Another install of that version would not do:
# pyenv's, for one, is configured --enable-shared, which alone costs a pure-
# Python loop more than 10%.
#
# Prints the free-threaded venv's python as its last line.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
source scripts/_lib.sh
source scripts/_python_build.sh
VENV=${PARLAB_FT_VENV:-.venv-ft}
TWIN_VENV=${PARLAB_GIL_VENV:-.venv-gil}
TWIN=0
[ "${1:-}" = --twin ] && TWIN=1
mkdir -p "$CACHE"

# Builds what is missing: the free-threaded interpreter, and with --twin the
# one with the GIL, from one source, so the two are the same release built
# the same way (an older free-threaded build, $1, is rebuilt beside a new twin).
build_interpreters() {
    ensure_build_deps
    local work=$CACHE/build ft=${1:-}
    prepare_source "$work"
    if [ -z "$ft" ] || [ "$(full_version "$ft")" != "$SRC_FULL" ]; then
        build_into "$SRC_TOP" "$SRC_VER" t t
    fi
    [ "$TWIN" = 1 ] && build_into "$SRC_TOP" "$SRC_VER" "" ""
    rm -rf "$work"
}

start=$SECONDS
prefix=$(built_prefix t) || { build_interpreters; prefix=$(built_prefix t); }
ver=$(cat "$prefix/.parlab-built")
PYFT=$prefix/bin/python${ver}t
if [ "$TWIN" = 1 ] && { [ ! -f "$CACHE/python-$ver/.parlab-built" ] ||
        [ "$(full_version "$CACHE/python-$ver/bin/python$ver")" != "$(full_version "$PYFT")" ]; }; then
    build_interpreters "$PYFT"
    prefix=$(built_prefix t)
    ver=$(cat "$prefix/.parlab-built")
    PYFT=$prefix/bin/python${ver}t
fi
log "interpreter $prefix ($((SECONDS - start)) s)"

venv "$VENV" "$PYFT"
PY=$VENV/bin/python
# Every dependency from a free-threaded wheel: some newest releases have
# none (numpy 2.5 has no 3.13t wheel; hypothesis, rpds-py and pyzmq would build
# with Rust crates or libsodium that cannot be downloaded here), so pip takes
# the newest release that has one (PIP_PREFER_BINARY reaches the build
# environment too). The test extra goes in without numba (test-base), which
# has no free-threaded build (the tests that need it skip, saying so), and
# with pytest-run-parallel, which runs each test in several threads at once.
# Editable, as scripts/test.sh installs it: the extension is compiled into
# parlab/ beside the normal venv's, under its own ABI tag
# (_core.cpython-3XXt-*.so), so the two never overwrite each other.
export PIP_PREFER_BINARY=1
install_parlab "$VENV" ".[test-base]" "pytest-run-parallel>=0.4"
"$PY" -c 'import sys, parlab; assert not sys._is_gil_enabled(), "import parlab turned the GIL on"'
log "venv $VENV ready ($((SECONDS - start)) s)"
if [ "$TWIN" = 1 ]; then
    # What a worker of L6.4 imports: parlab and its dependencies.
    venv "$TWIN_VENV" "$CACHE/python-$ver/bin/python$ver"
    install_parlab "$TWIN_VENV"
    log "venv $TWIN_VENV ready, Python $(full_version "$TWIN_VENV/bin/python") with the GIL" \
        "($((SECONDS - start)) s)"
fi
echo "$PY"
