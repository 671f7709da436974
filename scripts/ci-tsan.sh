#!/usr/bin/env bash
# CI: ThreadSanitizer over parlab on free-threaded CPython. scripts/python-tsan.sh
# builds the TSan interpreter once (cached in ~/.cache/parlab) and makes
# its venv (in the cache); parlab._core is built with -fsanitize=thread -g into
# build/tsan/ (the in-place extension is left alone), then
#   - the kernel, native-thread, counter (every mode), trace, GIL (held calls
#     take the emulated GIL here), interrupt and magics tests run on it once plainly and once under
#     pytest-run-parallel (--parallel-threads=4; never pytest-xdist), with
#     pytest -s as the py-free-threading guide advises;
#   - the C kernel driver, built with -fsanitize=thread, runs every kernel in
#     several native threads at once (tests/test_c_kernels.py, its threaded
#     tests);
#   - the negative checks: a build with a planted race (PARLAB_PLANT_RACE=1)
#     must be reported, in the extension (one trace test: threads recording
#     at once) and in the driver (one test).
# Any TSan report fails the step, in the test process or in any child (the
# IPython kernels, the driver): reports go
# to files, as scripts/sanitize.sh does for ASan. Suppressions: CPython's own
# file from the interpreter's release plus scripts/tsan-suppressions.txt,
# third-party code only; none for csrc/.
# Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
start=$SECONDS
PY=$(cd "$(dirname "$(bash scripts/python-tsan.sh | tail -1)")" && pwd)/python
OUT=$ROOT/build/tsan
PLANTED=$ROOT/build/tsan-planted
source scripts/_lib.sh
source scripts/_separate_build.sh

TSAN="-fsanitize=thread -g"
# setuptools adds CFLAGS and LDFLAGS to the extension's build (on top of the
# interpreter's own -fsanitize=thread); the C kernel tests add them to their
# driver's. The build uses that venv's setuptools and NumPy (no isolated
# build environment to install under TSan every run); CPython's own races
# while pip runs are not this pass's business.
export CFLAGS="$TSAN" LDFLAGS="$TSAN" PIP_NO_BUILD_ISOLATION=0
prefix=$(TSAN_OPTIONS=exitcode=0 "$PY" -c 'import sys; print(sys.base_prefix)')
SUPPRESSIONS=$ROOT/build/tsan-suppressions.txt
mkdir -p "$ROOT/build"
cat "$prefix/share/parlab/suppressions_free_threading.txt" scripts/tsan-suppressions.txt \
    > "$SUPPRESSIONS"
TSAN_OPTIONS="suppressions=$SUPPRESSIONS exitcode=0" separate_build "$OUT"
TSAN_OPTIONS="suppressions=$SUPPRESSIONS exitcode=0" PARLAB_PLANT_RACE=1 separate_build "$PLANTED"
log "built ($((SECONDS - start)) s)"

# tsan_run DIR CMD...: CMD with TSan reporting into DIR/logs, and the build
# in DIR/lib first on child processes' path too (the magics tests' IPython
# kernels import it); fails when a report appears there, printing it.
tsan_run() {
    local dir=$1 logs=$1/logs status=0
    shift
    rm -rf "$logs"
    mkdir -p "$logs"
    PYTHONPATH=$dir/lib TSAN_OPTIONS="halt_on_error=1 suppressions=$SUPPRESSIONS log_path=$logs/tsan" \
        "$@" || status=$?
    if compgen -G "$logs/*" > /dev/null; then
        log "ThreadSanitizer reports:"
        cat "$logs"/* >&2
        return 1
    fi
    return "$status"
}

# The tests marked tsan. Among them the emulated GIL's: on this interpreter,
# which runs without a GIL, held calls take parlab's emulated GIL in the
# build under test, so the GIL tests are its tests (test_emulated_gil builds
# the same emulation apart, for a normal CPython, and reruns these in a
# child: nothing more to see here).
# In 4 threads: those also marked parallel. The thread_unsafe ones, which the
# plain run has just run, are skipped; the trace, GIL, interrupt and magics
# tests are not marked parallel, thread-unsafe through and through: one
# trace records per process; they time threads against each other; signals
# reach the main thread only; one IPython kernel per module.
status=0
tsan_run "$OUT" pytest_on_build "$OUT" -s -q -m tsan "$TESTS" "$@" || status=1
log "plain run done ($((SECONDS - start)) s)"
tsan_run "$OUT" pytest_on_build "$OUT" -s -q -m "tsan and parallel" "$TESTS" --parallel-threads=4 \
    --skip-thread-unsafe=True "$@" || status=1
log "run in 4 threads done ($((SECONDS - start)) s)"
# The driver: every kernel at once in threads, the counter's exact modes and
# concurrent cdist blocks, and the planted race it must report.
tsan_run "$OUT" pytest_on_build "$OUT" "$TESTS/test_c_kernels.py" -s -q \
    -k "at_once or under_threads or concurrent_threads or planted_race" || status=1

# The extension with a planted race: threads recording into one trace at once.
tsan_run "$PLANTED" pytest_on_build "$PLANTED" "$TESTS/test_trace.py" -s -q -x \
    -k sixteen_threads_lose_nothing >/dev/null 2>&1 || true
if ! grep -qs "trace.c" "$PLANTED"/logs/*; then
    log "the planted race (PARLAB_PLANT_RACE=1) went unreported"
    status=1
fi
log "done ($((SECONDS - start)) s)"
exit "$status"
