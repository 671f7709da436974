"""Stress: 16 threads, started together through a threading.Barrier, each
running its own random mix of kernels in both GIL modes, with tracing off,
on throughout, or switched on and off by another thread meanwhile. Every
result is checked against its reference, and every shared counter exactly."""
from __future__ import annotations

import functools
import threading
import time
from typing import Any, Callable

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.spatial import distance

import parlab
import rng_reference as ref
from conftest import run_threaded
from test_c_kernels import python_long_comp

pytestmark = [pytest.mark.sanitize]

N_THREADS = 16
TASKS_PER_THREAD = 40
RNG = np.random.default_rng(2024)
XA, XB = RNG.normal(size=(30, 8)), RNG.normal(size=(20, 8))
KERNELS = ["cdist", "count_hits", "estimate_pi", "cpu_work", "io_wait", "increment"]


@functools.lru_cache(maxsize=None)
def cpu_reference(iterations: int) -> float:
    return python_long_comp(iterations)


class Counters:
    """The counters, each used only in a way that must count exactly: all
    locked, all atomic, or every call holding the GIL (any mode); racy
    released calls go to a counter of their own thread."""

    def __init__(self) -> None:
        self.shared = {"locked": parlab.Counter(), "atomic": parlab.Counter(),
                       "held": parlab.Counter()}
        self.expected: dict[parlab.Counter, int] = {}

    def plan(self, rng: np.random.Generator, own: parlab.Counter
             ) -> tuple[parlab.Counter, str, bool, int]:
        """(counter, mode, release_gil, n) of one increment."""
        n = int(rng.integers(0, 20_000))
        key = str(rng.choice(["locked", "atomic", "held", "own"]))
        if key == "held":
            mode, release = str(rng.choice(["racy", "locked", "atomic"])), False
        elif key == "own":
            mode, release = "racy", bool(rng.integers(2))
        else:
            mode, release = key, bool(rng.integers(2))
        counter = own if key == "own" else self.shared[key]
        self.expected[counter] = self.expected.get(counter, 0) + n
        return counter, mode, release, n


Task = tuple[str, Callable[[], Any], Callable[[Any], None]]


def make_task(kernel: str, rng: np.random.Generator, counters: Counters,
              own: parlab.Counter) -> Task:
    """(kernel, call, check): ``check(result)`` raises unless it is right."""
    release = bool(rng.integers(2))
    if kernel == "cdist":
        rows = slice(*sorted(rng.integers(0, 31, 2)))
        metric = str(rng.choice(["euclidean", "sqeuclidean"]))
        want = distance.cdist(XA[rows], XB, metric)
        return (kernel, lambda: parlab.cdist(XA[rows], XB, metric=metric, release_gil=release),
                lambda got: assert_allclose(got, want, rtol=1e-12, atol=1e-300))
    if kernel in ("count_hits", "estimate_pi"):
        n, start = int(rng.integers(1, 20_000)), int(rng.integers(0, 2**62))
        seed = int(rng.integers(0, 2**64, dtype=np.uint64))
        hits = ref.count_hits(n, seed, start)
        want = hits if kernel == "count_hits" else 4 * hits / n
        func = getattr(parlab, kernel)
        return kernel, lambda: func(n, seed=seed, start=start, release_gil=release), \
            functools.partial(_equal, want)
    if kernel == "cpu_work":
        iterations = int(rng.choice([0, 1, 1025, 30_000]))
        return kernel, lambda: parlab.cpu_work(iterations, release_gil=release), \
            functools.partial(_equal, cpu_reference(iterations))
    if kernel == "io_wait":
        seconds = float(rng.choice([0.0, 0.001, 0.003]))

        def timed_wait() -> float:
            t0 = time.perf_counter()
            parlab.io_wait(seconds, release_gil=release)
            return time.perf_counter() - t0

        return kernel, timed_wait, functools.partial(_at_least, seconds)
    counter, mode, release, n = counters.plan(rng, own)
    return kernel, lambda: counter.increment(n, mode=mode, release_gil=release), \
        functools.partial(_equal, None)


def _equal(want: Any, got: Any) -> None:
    assert got == want, (got, want)


def _at_least(seconds: float, took: float) -> None:
    assert took >= seconds, (took, seconds)


def trace_toggler(workers_left: Callable[[], int], idents: list[int]) -> int:
    """While workers run, start and stop traces of random length; checks each
    trace's records for consistency. Returns the number of traces taken."""
    rng = np.random.default_rng(7)
    traces = 0
    while workers_left():
        with parlab.trace(int(rng.integers(1, 2000))) as tr:
            time.sleep(float(rng.uniform(0, 0.005)))
        ev, s = tr.events, tr.summary()
        assert s["calls"] == len(ev)
        assert set(ev.kernel) <= {"cdist", "count_hits", "estimate_pi", "cpu_work",
                                  "io_wait", "Counter.increment"}
        assert set(ev.thread) <= set(idents)  # each worker notes its ident first
        assert ev.call.is_unique
        assert (ev.start_ns <= ev.work_start_ns).all() and (ev.work_end_ns <= ev.end_ns).all()
        traces += 1
    return traces


@pytest.mark.parametrize("tracing", ["off", "on", "toggled"])
def test_sixteen_threads_mixing_kernels_and_gil_modes(tracing):
    counters = Counters()
    plans = []
    for i in range(N_THREADS):
        rng = np.random.default_rng([11, i])
        own = parlab.Counter()
        plans.append([make_task(str(rng.choice(KERNELS)), rng, counters, own)
                      for _ in range(TASKS_PER_THREAD)])
    left, left_lock = N_THREADS, threading.Lock()
    idents = [0] * N_THREADS

    def worker(i: int) -> None:
        nonlocal left
        idents[i] = threading.get_ident()
        try:
            for _, call, check in plans[i]:
                check(call())
        finally:
            with left_lock:
                left -= 1

    def worker_or_toggler(i: int) -> Any:
        if i == N_THREADS:  # one more thread, started with the workers
            return trace_toggler(lambda: left, idents)
        return worker(i)

    if tracing == "toggled":
        assert run_threaded(worker_or_toggler, N_THREADS + 1)[-1] >= 1
    elif tracing == "on":
        with parlab.trace() as tr:
            run_threaded(worker, N_THREADS)
        assert tr.summary()["dropped"] == 0
        # Every call is recorded once, in its own thread.
        recorded = tr.events.groupby(["thread", "kernel"]).size().to_dict()
        planned: dict[tuple[int, str], int] = {}
        for ident, plan in zip(idents, plans):
            for kernel, _, _ in plan:
                name = "Counter.increment" if kernel == "increment" else kernel
                planned[ident, name] = planned.get((ident, name), 0) + 1
        assert recorded == planned
    else:
        run_threaded(worker, N_THREADS)
    for counter, total in counters.expected.items():
        assert counter.value == total
