#!/usr/bin/env bash
# The portability pass of CI, on Linux x86-64, for the compilers and systems
# this machine does not run natively (README, "Platforms"):
#   1. Clang builds parlab._core (-Werror) into build/clang/ (the in-place
#      extension is left alone); the kernel tests run against that build,
#      their C driver built by Clang too.
#   2. MinGW-w64 builds the C kernel driver for Windows (csrc/platform.c's
#      Win32 side: threads, SRW locks, QueryPerformanceCounter); its tests run
#      under wine64 on every SIMD path this CPU has.
#   3. The binding units (csrc/*.c) compile (-c, -Werror) with MinGW-w64
#      against CPython's Windows pyconfig.h (PC/pyconfig.h, from Debian's
#      source package of python3.11) and NumPy's headers configured for
#      64-bit Windows. Nothing is linked: there is no Windows python here.
# Installs clang, MinGW-w64 and wine with apt where missing. Uses the virtual
# environment of scripts/test.sh (PARLAB_VENV, default .venv). Extra
# arguments go to every pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$(cd "${PARLAB_VENV:-.venv}" && pwd)/bin/python
OUT=$ROOT/build/portability
source scripts/_lib.sh
source scripts/_separate_build.sh

debs clang gcc-mingw-w64-x86-64 wine64
WINE=$(command -v wine64 || echo /usr/lib/wine/wine64)
# The sanitizer pass's flags must not reach these builds.
unset CFLAGS LDFLAGS
mkdir -p "$OUT" "$CACHE"

step() { echo "== ci-portability: $* ($(date -u +%T))"; }

step "1. Clang build, kernel tests"
CC=clang separate_build "$OUT/clang"
"$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import parlab; c = parlab.info()["compiler"]; print(c); assert c.startswith("clang"), c' "$OUT/clang/lib"
PARLAB_DRIVER_TOOLCHAINS=clang pytest_on_build "$OUT/clang" -q -m portability "$TESTS" "$@"

step "2. MinGW-w64 driver under wine"
# A private wine prefix; its server stays up between the driver's runs (each
# run costs ~0.15 s with it, ~0.35 s without), started before any client.
# The prefix lives outside the checkout: its drive z: links to /, and
# setuptools follows links when it lists the checkout's files at each build.
export WINEDEBUG=-all WINEPREFIX=$CACHE/wineprefix
WINESERVER=$(dirname "$(readlink -f "$WINE")")/wineserver
[ -x "$WINESERVER" ] || WINESERVER=$(command -v wineserver)
mkdir -p "$WINEPREFIX"
"$WINESERVER" -k 2> /dev/null || true
"$WINESERVER" -p 600
"$WINE" cmd /c exit > /dev/null 2>&1
status=0
CI=true PARLAB_DRIVER_TOOLCHAINS=mingw "$PY" -m pytest -p no:cacheprovider -q tests/test_c_kernels.py "$@" || status=$?
"$WINESERVER" -k || true
[ "$status" -eq 0 ] || exit "$status"

step "3. Binding units with MinGW-w64 against CPython's Windows pyconfig.h"
# CPython's headers: Include/ and PC/pyconfig.h of Debian bookworm's
# python3.11 source, fetched with a private apt state (the system's sources
# and lists stay untouched) and cached.
CPY=$CACHE/cpython-3.11-windows-headers
if [ ! -f "$CPY/PC/pyconfig.h" ]; then
    APT=$OUT/apt
    rm -rf "$APT"
    mkdir -p "$APT/src"
    private_apt "$APT" "deb-src http://deb.debian.org/debian bookworm main"
    # Only the upstream tarball is needed: Debian's patches touch no Windows header.
    (cd "$APT/src" && apt-get "${APT_OPTS[@]}" source --download-only python3.11)
    rm -rf "$CPY.tmp" && mkdir -p "$CPY.tmp"
    tar -xzf "$APT"/src/python3.11_*.orig.tar.gz -C "$CPY.tmp" --strip-components=1 \
        --wildcards '*/Include/*' '*/PC/pyconfig.h'
    rm -rf "$CPY" && mv "$CPY.tmp" "$CPY"
fi
# NumPy's headers as installed are configured for this Linux build (long is
# 8 bytes, <endian.h>): a copy says what NumPy's Windows wheels say.
NPY=$OUT/numpy-windows-include
rm -rf "$NPY"
cp -r "$("$PY" -c 'import numpy; print(numpy.get_include())')" "$NPY"
sed -i -e '/NPY_HAVE_ENDIAN_H/d' \
    -e 's/\(NPY_SIZEOF_LONG\) 8/\1 4/' \
    -e 's/\(NPY_SIZEOF_WCHAR_T\) 4/\1 2/' \
    -e 's/\(NPY_SIZEOF_LONGDOUBLE\) 16/\1 8/' \
    -e 's/\(NPY_SIZEOF_COMPLEX_LONGDOUBLE\) 32/\1 16/' \
    -e 's/\(NPY_VISIBILITY_HIDDEN\) .*/\1/' "$NPY/numpy/_numpyconfig.h"
grep -q "NPY_SIZEOF_LONG 4" "$NPY/numpy/_numpyconfig.h"
# The flags setup.py gives GCC-like compilers, from setup.py itself.
read -r -a FLAGS <<< "$(PARLAB_WERROR=1 "$PY" -c 'import runpy, sys, setuptools
setuptools.setup = lambda **kw: None
print(" ".join(runpy.run_path("setup.py")["compile_args"]("mingw32")))')"
mkdir -p "$OUT/mingw-obj"
for unit in csrc/*.c; do
    x86_64-w64-mingw32-gcc "${FLAGS[@]}" -I"$CPY/PC" -I"$CPY/Include" -I"$NPY" -Icsrc \
        -c "$unit" -o "$OUT/mingw-obj/$(basename "$unit" .c).o"
done
echo "compiled: $(ls "$OUT/mingw-obj")"
step "done"
