#!/usr/bin/env bash
# A CPython of a current release (3.15 by default, or 3.14) assembled from
# Debian unstable's (sid's) binary packages, and a virtual environment with
# parlab in it: for the CI pass on today's Python and for anyone who wants the
# lectures on it. No compiler is involved; the interpreter takes a minute.
#
#     bash scripts/python-current.sh [--no-venv] [3.15|3.14]
#
# sid serves python3.15 and python3.14 as binaries only (no sources), built
# against a newer glibc than this machine's, so the interpreter comes with its
# own: `apt-get download` (from a private apt state under the cache, so the
# machine's apt sources and lists stay as they are) fetches python3.X, its
# -minimal, libpython3.X, -minimal, -stdlib and -dev packages, sid's libc6
# and libgcc-s1, and the libraries those packages depend on (the ones the
# standard library's modules link: ssl, ffi, zstd, expat, zlib, bz2, lzma,
# sqlite3, uuid, ncurses, readline; apt-cache names them); `dpkg -x` unpacks
# them all into ~/.cache/parlab/python-3.X (a root of its own, /usr inside
# it), and patchelf points the interpreter at that root's loader and, with
# an RPATH (which, unlike a RUNPATH, also serves the standard library's
# extension modules and whatever they load), at its libraries. Nothing is
# set in the environment, so the programs the interpreter starts (a compiler,
# another Python) run as usual, and its children (multiprocessing's spawn,
# sys.executable) are the same patched interpreter.
# The root's build configuration (sysconfig) is made to name the root's /usr
# where Debian's names /usr, and Debian's pyconfig.h, a stub that includes the
# multiarch one by a path relative to /usr/include, is replaced by the real
# header: C extensions (parlab's) compile against the root's headers with no
# CPATH, and `-m venv` installs pip from Debian's wheel in the root
# (python3.X-venv, python3-pip-whl). A stamp file marks a finished install; delete the folder to
# assemble it anew. PARLAB_CACHE moves the cache, PARLAB_CURRENT_VENV the
# venv (default .venv-3.X in the checkout).
#
# Prints the venv's python as its last line (with --no-venv: the interpreter).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
source scripts/_lib.sh
MAKE_VENV=1
[ "${1:-}" = --no-venv ] && { MAKE_VENV=0; shift; }
VER=${1:-3.15}
case $VER in 3.14|3.15) ;; *) echo "usage: $0 [--no-venv] [3.15|3.14]" >&2; exit 2;; esac
ROOT=$CACHE/python-$VER
VENV=${PARLAB_CURRENT_VENV:-.venv-$VER}
PYTHON=$ROOT/usr/bin/python$VER
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")

assemble() {
    local work=$CACHE/apt-sid/debs patchelf ld libdirs p
    patchelf=$(tools)/patchelf
    rm -rf "$ROOT" "$work"
    mkdir -p "$work"
    private_apt "$CACHE/apt-sid" "deb http://deb.debian.org/debian sid main"
    local pkgs=("python$VER" "python$VER-minimal" "libpython$VER" "libpython$VER-minimal"
                "libpython$VER-stdlib" "libpython$VER-dev" "python$VER-venv")
    # The shared libraries those packages depend on (their -dev packages and
    # data packages like tzdata aside: the machine's own serve), with sid's
    # libc6 and the libgcc-s1 it needs.
    local deps
    deps=$(apt-cache "${APT_OPTS[@]}" depends --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances "${pkgs[@]}" \
           | awk '/^  (Pre)?Depends: lib/ {print $2}' | grep -v -e '^libpython' -e '-dev$' | sort -u)
    # shellcheck disable=SC2086
    (cd "$work" && apt-get "${APT_OPTS[@]}" download "${pkgs[@]}" $deps libc6 libgcc-s1 python3-pip-whl >/dev/null)
    for p in "$work"/*.deb; do dpkg -x "$p" "$ROOT"; done
    log "unpacked $(ls "$work" | wc -l) packages: $(cd "$work" && ls | sed 's/_.*//' | tr '\n' ' ')"
    rm -rf "$work"

    ld=$(find "$ROOT/usr/lib/$MULTIARCH" -maxdepth 1 -name 'ld-linux*.so.*' -type f | head -1)
    [ -n "$ld" ] || { log "no loader in sid's libc6"; exit 1; }
    libdirs=$ROOT/usr/lib/$MULTIARCH:$ROOT/lib/$MULTIARCH
    "$patchelf" --set-interpreter "$ld" --force-rpath --set-rpath "$libdirs" "$PYTHON"
    # The build configuration names /usr (the headers, the libraries, the pip
    # wheel that venv's ensurepip installs): the root's /usr instead.
    sed -i -E "s#'/usr(/|')#'$ROOT/usr\\1#g" "$ROOT"/usr/lib/python"$VER"/_sysconfigdata_*.py
    cp "$ROOT/usr/include/$MULTIARCH/python$VER/pyconfig.h" "$ROOT/usr/include/python$VER/pyconfig.h"

    # Every extension module of the standard library finds every library it
    # links inside the root (the loader is asked to list them as the
    # interpreter would load them).
    local missing
    missing=$(for p in "$ROOT"/usr/lib/python"$VER"/lib-dynload/*.so; do
                  LD_LIBRARY_PATH=$libdirs "$ld" --list "$p" | grep 'not found' || true
              done | sort -u)
    [ -z "$missing" ] || { log "libraries missing from the root:"; echo "$missing" >&2; exit 1; }
    "$PYTHON" -c 'import sys, ssl, ctypes, sqlite3, zlib, lzma, bz2, decimal, readline, uuid
import compression.zstd, pyexpat, sysconfig
assert sys.version_info[:2] == tuple(map(int, sys.argv[1].split("."))), sys.version
for path in sysconfig.get_path("include"), sysconfig.get_config_var("INCLUDEPY"):
    assert path.startswith(sys.argv[2]), path
ctypes.CDLL(None).getpid()
ssl.create_default_context()
print(sys.version.split()[0], ssl.OPENSSL_VERSION, "sqlite", sqlite3.sqlite_version)' \
        "$VER" "$ROOT" >&2
    echo "$VER" > "$ROOT/.parlab-built"
}

start=$SECONDS
if [ ! -f "$ROOT/.parlab-built" ]; then
    # One assembly at a time: CI's two lanes may both ask for one, and every
    # assembly shares sid's private apt state.
    mkdir -p "$CACHE"
    exec 9> "$CACHE/python-current.lock"
    flock 9
    if [ ! -f "$ROOT/.parlab-built" ]; then
        log "assembling CPython $VER from Debian sid's binary packages into $ROOT"
        assemble
    fi
    flock -u 9
fi
log "interpreter $PYTHON, Python $("$PYTHON" -c 'import platform; print(platform.python_version())')" \
    "($((SECONDS - start)) s)"
[ "$MAKE_VENV" = 1 ] || { echo "$PYTHON"; exit 0; }

venv "$VENV" "$PYTHON"
PY=$VENV/bin/python
# numba publishes wheels for a new CPython months after its release: where it
# has none for this one, the test extra goes in without it (test-base), and
# the tests that need numba skip, saying so.
extra=test
"$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$CACHE/pip-probe" "numba>=0.60" \
    >/dev/null 2>&1 || { extra=test-base; log "numba has no wheel for $VER: installing [test-base]"; }
rm -rf "$CACHE/pip-probe"
install_parlab "$VENV" ".[$extra]"
"$PY" -W error::DeprecationWarning -c 'import parlab, parlab.magics'
log "venv $VENV ready ($((SECONDS - start)) s)"
echo "$PY"
