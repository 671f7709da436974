# Sourced, not run: a build of parlab._core apart from the in-place one, for
# the passes that test another build (scripts/sanitize.sh: instrumented;
# scripts/ci-portability.sh: compiled by Clang). Needs ROOT (the checkout)
# and PY (the python of the virtual environment of scripts/test.sh).

# separate_build OUT: a wheel built from a copy of the sources, with the
# environment's CC, CFLAGS and LDFLAGS, unpacked into OUT/lib. Nothing
# compiled in the checkout (its build/ or in-place extension) is reused or
# overwritten. pip builds it in an isolated environment, as `pip install`
# does (setuptools and numpy from PyPI or pip's cache).
separate_build() {
    local out=$1
    rm -rf "$out"
    mkdir -p "$out/src"
    cp -r "$ROOT"/{csrc,parlab,setup.py,pyproject.toml,README.md,MANIFEST.in} "$out/src/"
    rm -f "$out"/src/parlab/*.so
    PARLAB_WERROR=1 "$PY" -m pip wheel --quiet --no-deps --wheel-dir "$out/wheel" "$out/src" \
        > "$out/build.log" 2>&1 || { cat "$out/build.log"; return 1; }
    "$PY" -m zipfile -e "$out"/wheel/parlab-*.whl "$out/lib"
}

# pytest_on_build OUT PYTEST_ARG...: pytest from inside OUT/lib, where
# `import parlab` finds that build first. The tests are named as pytest
# takes them: a subset of $TESTS (-m sanitize "$TESTS"), or a module
# ("$TESTS/test_trace.py").
TESTS=$ROOT/tests
pytest_on_build() {
    local out=$1
    shift
    (cd "$out/lib" &&
        "$PY" -c 'import parlab._core, sys; assert parlab._core.__file__.startswith(sys.argv[1]), parlab._core.__file__' "$out/lib/" &&
        "$PY" -m pytest -p no:cacheprovider -c "$ROOT/pyproject.toml" --rootdir "$ROOT" "$@")
}
