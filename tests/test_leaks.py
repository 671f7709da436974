"""Repeated calls, successful or failing, leak neither references nor memory."""
from __future__ import annotations

import gc
import sys
import tracemalloc
from typing import Any, Callable

import numpy as np
import psutil
import pytest

import parlab

pytestmark = [pytest.mark.sanitize]

REPEATS = 2000
WARMUP = 200
RUNS = 8
# Traced bytes a run of REPEATS calls may grow by: leaking even one small
# object a call would add over 30 kB. (Measured noise: a few dozen bytes.)
SLACK = 4096


def traced_growths(call: Callable[[], Any], runs: int = RUNS) -> list[int]:
    """Bytes more allocated (per tracemalloc) after each of up to ``runs``
    runs of REPEATS calls of ``call``, all in one tracing session, after a
    warm-up so that caches filled on first use don't count. Stops after the
    first run that grows by less than SLACK.

    A leak grows every run by about the same amount. A bounded cache (with
    PYTHONMALLOC=malloc, exception paths fill one of some 100 kB) grows less
    each run, until it stops. NumPy reports its array buffers to tracemalloc,
    so leaked arrays count."""
    for _ in range(WARMUP):
        call()
    gc.collect()
    tracemalloc.start()
    try:
        growths = []
        before = tracemalloc.get_traced_memory()[0]
        while len(growths) < runs and (not growths or growths[-1] >= SLACK):
            for _ in range(REPEATS):
                call()
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            growths.append(after - before)
            before = after
        return growths
    finally:
        tracemalloc.stop()


def swallowing(exc: type[BaseException], func: Callable[..., Any], *args, **kwargs):
    """A call of ``func`` that must raise ``exc``, which it swallows."""
    def call() -> None:
        try:
            func(*args, **kwargs)
        except exc:
            return
        raise AssertionError(f"{func.__name__} did not raise {exc.__name__}")
    return call


rng = np.random.default_rng(0)
XA = rng.random((10, 5))
XB = rng.random((7, 5))
XA32 = XA.astype(np.float32)
XA_F = np.asfortranarray(XA)
OUT = np.empty((10, 7))
OUT32 = np.empty((10, 7), np.float32)
OUT_RO = np.empty((10, 7))
OUT_RO.flags.writeable = False
SEQ = np.random.SeedSequence(77, spawn_key=(1,))
BIG_SEED = 2**70
COUNTER = parlab.Counter()

# id -> (call, objects whose reference counts must not change)
CALLS: dict[str, tuple[Callable[[], Any], list[Any]]] = {
    "cdist": (lambda: parlab.cdist(XA, XB), [XA, XB]),
    "cdist-held-sqeuclidean": (
        lambda: parlab.cdist(XA, XB, metric="sqeuclidean", release_gil=False), [XA, XB]),
    "cdist-converted": (lambda: parlab.cdist(XA32, XA_F), [XA32, XA_F]),
    "cdist-lists": (lambda: parlab.cdist([[1, 2], [3, 4]], [[5.0, 6.0]]), []),
    "cdist-out": (lambda: parlab.cdist(XA, XB, out=OUT), [XA, XB, OUT]),
    "cdist-out-held": (lambda: parlab.cdist(XA, XB, out=OUT, release_gil=False),
                       [XA, XB, OUT]),
    "cdist-bad-out-dtype": (swallowing(ValueError, parlab.cdist, XA32, XB, out=OUT32),
                            [XA32, XB, OUT32]),
    "cdist-bad-out-readonly": (swallowing(ValueError, parlab.cdist, XA, XB, out=OUT_RO),
                               [XA, XB, OUT_RO]),
    "cdist-bad-metric": (swallowing(ValueError, parlab.cdist, XA, XB, metric="nope"),
                         [XA, XB]),
    "cdist-bad-shape": (swallowing(ValueError, parlab.cdist, XA, XB.T), [XA, XB]),
    "cdist-bad-dtype": (swallowing(TypeError, parlab.cdist, XA.astype(complex), XB), [XB]),
    "count_hits-SeedSequence": (lambda: parlab.count_hits(1000, seed=SEQ), [SEQ]),
    "count_hits-big-seed": (lambda: parlab.count_hits(1000, seed=BIG_SEED, start=2**40),
                            [BIG_SEED]),
    "count_hits-no-seed": (lambda: parlab.count_hits(1000, release_gil=False), []),
    "count_hits-bad-seed": (swallowing(ValueError, parlab.count_hits, 10, seed=-1), []),
    "count_hits-bad-seed-type": (swallowing(TypeError, parlab.count_hits, 10, seed="x"), []),
    "count_hits-bad-start": (swallowing(OverflowError, parlab.count_hits, 10,
                                        start=2**63 - 1), []),
    "estimate_pi": (lambda: parlab.estimate_pi(1000, seed=SEQ), [SEQ]),
    "estimate_pi-zero": (swallowing(ValueError, parlab.estimate_pi, 0), []),
    "cpu_work": (lambda: parlab.cpu_work(100), []),
    "cpu_work-held": (lambda: parlab.cpu_work(100, release_gil=False), []),
    "cpu_work-bad": (swallowing(TypeError, parlab.cpu_work, 1.5), []),
    "io_wait": (lambda: parlab.io_wait(0.0), []),
    "io_wait-held": (lambda: parlab.io_wait(0, release_gil=False), []),
    "io_wait-bad": (swallowing(ValueError, parlab.io_wait, -1.0), []),
    "Counter-new": (lambda: parlab.Counter(2**62), []),
    "Counter-bad": (swallowing(OverflowError, parlab.Counter, 2**63), []),
    "Counter-value": (lambda: setattr(COUNTER, "value", COUNTER.value), [COUNTER]),
    "increment-racy": (lambda: COUNTER.increment(10), [COUNTER]),
    "increment-locked": (lambda: COUNTER.increment(10, mode="locked"), [COUNTER]),
    "increment-atomic-held": (
        lambda: COUNTER.increment(10, mode="atomic", release_gil=False), [COUNTER]),
    "increment-bad-mode": (swallowing(ValueError, COUNTER.increment, 1, mode="fast"),
                           [COUNTER]),
    "release_gil-bad": (swallowing(TypeError, parlab.count_hits, 1, release_gil=1), []),
}


@pytest.mark.parametrize("name", CALLS)
def test_no_reference_leak(name):
    call, watched = CALLS[name]
    call()
    before = [sys.getrefcount(obj) for obj in watched]
    for _ in range(REPEATS):
        call()
    assert [sys.getrefcount(obj) for obj in watched] == before


@pytest.mark.parametrize("name", CALLS)
def test_no_traced_memory_growth(name):
    # tracemalloc sees every thread: a background thread left by an earlier
    # test (tqdm's monitor, a pool's manager) may allocate during one run. A
    # leak grows every run, so one run that does not grow clears the call.
    growths = traced_growths(CALLS[name][0])
    assert min(growths) < SLACK, f"bytes more after each run of {REPEATS} calls: {growths}"


def test_traced_growths_detect_a_small_leak():
    kept = []
    growths = traced_growths(lambda: kept.append(float(len(kept)) + 0.5))
    assert len(growths) == RUNS and min(growths) >= SLACK


def test_rss_flat_for_large_arrays(release_gil):
    # Float32 inputs make the binding convert (8 MB copies); an error path
    # that forgets a copy, or a result never freed, grows RSS by 8 MB a call.
    big = np.random.default_rng(1).random((2000, 500)).astype(np.float32)
    small = big[:20]
    bad_out = np.empty((2000, 20), np.float32)

    def calls() -> None:
        parlab.cdist(big, small, release_gil=release_gil)
        with pytest.raises(ValueError):
            parlab.cdist(big, small, out=bad_out, release_gil=release_gil)

    process = psutil.Process()
    for _ in range(3):
        calls()
    gc.collect()
    before = process.memory_info().rss
    for _ in range(40):
        calls()
    gc.collect()
    growth = process.memory_info().rss - before
    assert growth < 100 * 2**20, f"RSS grew by {growth / 2**20:.0f} MiB in 40 rounds"
