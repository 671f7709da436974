# Sourced, not run: CPython built from the upstream source that Debian's
# source packages carry, for scripts/python-ft.sh (free-threaded, and its twin
# with the GIL) and scripts/python-tsan.sh (free-threaded under
# ThreadSanitizer). Needs scripts/_lib.sh sourced first.
#
# apt works from a private state directory in the build's work folder, so the
# machine's own apt sources and lists stay as they are. Each build is
# installed into $CACHE/python-<major.minor><suffix>; a stamp file there
# (.parlab-built, holding the major.minor) marks a finished install.

# The releases tried, newest first: the archive may serve a newer one later.
PYBUILD_VERSIONS=(3.15 3.14 3.13)

# The prefix of the newest finished build with suffix $1 ("t", "t-tsan"), or
# status 1 when there is none.
built_prefix() {
    local v
    for v in "${PYBUILD_VERSIONS[@]}"; do
        [ -f "$CACHE/python-$v$1/.parlab-built" ] && { echo "$CACHE/python-$v$1"; return 0; }
    done
    return 1
}

# The libraries of the standard library's optional modules (ssl for pip,
# ctypes, zlib, bz2, lzma, sqlite3, readline, uuid, dbm, zstd on 3.14), and
# any packages named ($@, e.g. a compiler). A missing library only drops that
# module, so the build goes on without what cannot be installed.
ensure_build_deps() {
    debs build-essential pkg-config libssl-dev libffi-dev zlib1g-dev libbz2-dev \
        liblzma-dev libsqlite3-dev libreadline-dev uuid-dev libgdbm-dev libzstd-dev \
        libexpat1-dev xz-utils dpkg-dev "$@" || log "building without them"
}

# Downloads into $1 the first source package that the archive serves, newest
# first: python3.15 and python3.14 (testing, then unstable), python3.13
# (testing, then trixie); prints its major.minor. A suite's index may list a
# version that the pool no longer (or not yet) holds: then the next is tried.
# apt's state goes into $1/../apt.
fetch_source() {
    local dir=$1 cand
    mkdir -p "$dir"
    private_apt "$(dirname "$dir")/apt" "deb-src http://deb.debian.org/debian "{forky,sid,trixie}" main"
    for cand in python3.15/forky python3.15/sid python3.14/forky python3.14/sid \
                python3.13/forky python3.13/trixie; do
        if (cd "$dir" && apt-get "${APT_OPTS[@]}" source --download-only "$cand" >/dev/null 2>&1); then
            cand=${cand%/*}
            echo "${cand#python}"
            return 0
        fi
        log "$cand: not served here"
        rm -f "$dir"/*
    done
    log "no python3.15, python3.14 or python3.13 source package could be downloaded"
    return 1
}

# Downloads and unpacks the newest source into the (emptied) work folder $1;
# sets SRC_VER (the major.minor), SRC_TOP (the unpacked tree) and SRC_FULL
# (its full version, "3.13.15").
prepare_source() {
    local work=$1
    rm -rf "$work"
    SRC_VER=$(fetch_source "$work/src")
    # Debian's orig tarball is CPython's release tarball: no Debian patch is
    # needed for a plain --prefix build.
    tar -xf "$work"/src/python"$SRC_VER"_*.orig.tar.* -C "$work"
    SRC_TOP=$(find "$work" -mindepth 1 -maxdepth 1 -type d -iname 'python*' | head -1)
    SRC_FULL=$(cd "$SRC_TOP" && grep -o 'PY_VERSION[[:space:]]*"[^"]*"' Include/patchlevel.h | cut -d'"' -f2)
}

# build_into TOP VER T SUFFIX [CONFIGURE_ARG...]: configures, builds and
# installs the unpacked source TOP of CPython VER (the major.minor) into
# $CACHE/python-VER$SUFFIX: free-threaded where T is "t", with the GIL where
# it is empty; the configure arguments come on top (a compiler, a sanitizer).
# Checks the optional modules and the GIL, then stamps the install finished.
# Logs go beside TOP.
build_into() {
    local top=$1 ver=$2 t=$3 suffix=$4 work gil=()
    shift 4
    local prefix=$CACHE/python-$ver$suffix
    work=$(dirname "$top")
    [ "$t" = t ] && gil=(--disable-gil)
    log "building $(basename "$top") ${gil[*]:-with the GIL} $* into $prefix"
    rm -rf "$prefix"
    # No PGO/LTO (they triple the build time); no test package (the stdlib's
    # own tests are a third of the install and of its byte-compiling).
    (cd "$top" && make distclean >/dev/null 2>&1 || true)
    (cd "$top" && ./configure --quiet "${gil[@]}" --prefix="$prefix" --with-ensurepip=install \
        --disable-test-modules "$@" >"$work/configure.log" 2>&1 \
        || { cat "$work/configure.log"; exit 1; })
    (cd "$top" && make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -50 "$work/make.log"; exit 1; })
    (cd "$top" && make install >"$work/install.log" 2>&1 || { tail -50 "$work/install.log"; exit 1; })
    "$prefix/bin/python$ver$t" -c "import sys, ssl, ctypes, zlib, bz2, lzma, sqlite3
assert sys._is_gil_enabled() == ('$t' != 't')"
    echo "$ver" > "$prefix/.parlab-built"
}
