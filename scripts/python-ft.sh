#!/usr/bin/env bash
# A free-threaded CPython (built with --disable-gil) and a virtual environment
# with parlab in it, for the free-threaded CI pass and for anyone who wants to
# see the lectures without a GIL.
#
# The interpreter is built from the upstream source that Debian's source
# packages carry: CPython 3.14 from Debian testing (forky) when that suite
# serves it, else 3.13 from trixie. apt works from a private state directory
# under the cache, so the machine's own apt sources and lists stay as they are.
# The build is installed into ~/.cache/parlab/python-<version>t and is reused
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
CACHE=${PARLAB_CACHE:-$HOME/.cache/parlab}
VENV=${PARLAB_FT_VENV:-.venv-ft}
TWIN_VENV=${PARLAB_GIL_VENV:-.venv-gil}
TWIN=0
[ "${1:-}" = --twin ] && TWIN=1
mkdir -p "$CACHE"

log() { echo "python-ft.sh: $*" >&2; }

built_prefix() {
    local stamp
    for stamp in "$CACHE"/python-3.14t/.parlab-built "$CACHE"/python-3.13t/.parlab-built; do
        [ -f "$stamp" ] && { dirname "$stamp"; return 0; }
    done
    return 1
}

# "3.13.15" of an installed build's interpreter $1.
full_version() {
    "$1" -c 'import platform; print(platform.python_version())'
}

# Makes the venv $2 of interpreter $1, again if it was made by another one
# (a newer release built beside the old).
venv_of() {
    if [ -x "$2/bin/python" ] && [ "$(full_version "$2/bin/python")" = "$(full_version "$1")" ]; then
        return 0
    fi
    rm -rf "$2"
    "$1" -m venv "$2"
}

# The libraries of the standard library's optional modules (ssl for pip,
# ctypes, zlib, bz2, lzma, sqlite3, readline, uuid, dbm, zstd on 3.14); a
# missing one only drops that module, so install what is missing when root.
ensure_build_deps() {
    local want=(build-essential pkg-config libssl-dev libffi-dev zlib1g-dev libbz2-dev
                liblzma-dev libsqlite3-dev libreadline-dev uuid-dev libgdbm-dev libzstd-dev
                libexpat1-dev xz-utils dpkg-dev) missing=() p
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        log "not root, building without: ${missing[*]}"
    fi
}

# Downloads the first source package that the archive serves, newest first:
# python3.14 (testing), python3.13 (testing, then trixie), into $1; prints its
# major.minor. A suite's index may list a version that the pool no longer (or
# not yet) holds: then the next is tried.
fetch_source() {
    local dir=$1 apt=$CACHE/apt cand
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dir"
    printf 'deb-src http://deb.debian.org/debian %s main\n' forky trixie > "$apt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
                -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
                -o APT::Sandbox::User=root -qq)
    apt-get "${opts[@]}" update >&2
    for cand in python3.14/forky python3.13/forky python3.13/trixie; do
        if (cd "$dir" && apt-get "${opts[@]}" source --download-only "$cand" >/dev/null 2>&1); then
            cand=${cand%/*}
            echo "${cand#python}"
            return 0
        fi
        log "$cand: not served here"
        rm -f "$dir"/*
    done
    log "no python3.14 or python3.13 source package could be downloaded"
    return 1
}

# Configures, builds and installs the unpacked source $1 of CPython $2 (the
# major.minor) into $CACHE/python-$2$3: free-threaded where $3 is "t", with the
# GIL where it is empty. Checks the optional modules and the GIL, then stamps
# the install finished.
build_into() {
    local top=$1 ver=$2 t=$3 work=$CACHE/build prefix=$CACHE/python-$2$3 gil=()
    [ "$t" = t ] && gil=(--disable-gil)
    log "building $(basename "$top") ${gil[*]:-with the GIL} into $prefix"
    rm -rf "$prefix"
    # No PGO/LTO (they triple the build time); no test package (the stdlib's
    # own tests are a third of the install and of its byte-compiling).
    (cd "$top" && make distclean >/dev/null 2>&1 || true)
    (cd "$top" && ./configure --quiet "${gil[@]}" --prefix="$prefix" --with-ensurepip=install \
        --disable-test-modules >"$work/configure.log" 2>&1 \
        || { cat "$work/configure.log"; exit 1; })
    (cd "$top" && make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -50 "$work/make.log"; exit 1; })
    (cd "$top" && make install >"$work/install.log" 2>&1 || { tail -50 "$work/install.log"; exit 1; })
    "$prefix/bin/python$ver$t" -c "import sys, ssl, ctypes, zlib, bz2, lzma, sqlite3
assert sys._is_gil_enabled() == ('$t' != 't')"
    echo "$ver" > "$prefix/.parlab-built"
}

# Builds what is missing: the free-threaded interpreter, and with --twin the
# one with the GIL, from one source, so the two are the same release built
# the same way (an older free-threaded build, $1, is rebuilt beside a new twin).
build_interpreters() {
    ensure_build_deps
    local work=$CACHE/build ver top ft=${1:-} full
    rm -rf "$work"
    ver=$(fetch_source "$work/src")
    # Debian's orig tarball is CPython's release tarball: no Debian patch is
    # needed for a plain --prefix build.
    tar -xf "$work"/src/python"$ver"_*.orig.tar.* -C "$work"
    top=$(find "$work" -mindepth 1 -maxdepth 1 -type d -iname 'python*' | head -1)
    full=$(cd "$top" && grep -o 'PY_VERSION[[:space:]]*"[^"]*"' Include/patchlevel.h | cut -d'"' -f2)
    if [ -z "$ft" ] || [ "$(full_version "$ft")" != "$full" ]; then
        build_into "$top" "$ver" t
    fi
    [ "$TWIN" = 1 ] && build_into "$top" "$ver" ""
    rm -rf "$work" "$CACHE/apt"
}

start=$SECONDS
prefix=$(built_prefix) || { build_interpreters; prefix=$(built_prefix); }
ver=$(cat "$prefix/.parlab-built")
PYFT=$prefix/bin/python${ver}t
if [ "$TWIN" = 1 ] && { [ ! -f "$CACHE/python-$ver/.parlab-built" ] ||
        [ "$(full_version "$CACHE/python-$ver/bin/python$ver")" != "$(full_version "$PYFT")" ]; }; then
    build_interpreters "$PYFT"
    prefix=$(built_prefix)
    ver=$(cat "$prefix/.parlab-built")
    PYFT=$prefix/bin/python${ver}t
fi
log "interpreter $prefix ($((SECONDS - start)) s)"

venv_of "$PYFT" "$VENV"
PY=$VENV/bin/python
"$PY" -m pip install --quiet --upgrade pip
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
PARLAB_WERROR=1 "$PY" -m pip install --quiet -e ".[test-base]" "pytest-run-parallel>=0.4"
"$PY" -m pip check
"$PY" -c 'import sys, parlab; assert not sys._is_gil_enabled(), "import parlab turned the GIL on"'
log "venv $VENV ready ($((SECONDS - start)) s)"
if [ "$TWIN" = 1 ]; then
    # What a worker of L6.4 imports: parlab and its dependencies.
    venv_of "$CACHE/python-$ver/bin/python$ver" "$TWIN_VENV"
    "$TWIN_VENV/bin/python" -m pip install --quiet --upgrade pip
    PARLAB_WERROR=1 "$TWIN_VENV/bin/python" -m pip install --quiet -e .
    log "venv $TWIN_VENV ready, Python $(full_version "$TWIN_VENV/bin/python") with the GIL" \
        "($((SECONDS - start)) s)"
fi
echo "$PY"
