"""Lecture 003's last example: where to open the parallel region (L3.6).

The lecture applies ``sin(cos(x) * sin(x))`` to every element of a 3-D array
with numba, putting ``prange`` on the outer, the middle or the inner loop.
Each pass of the loops around a ``prange`` opens and closes one parallel
region, so with ``prange`` inside, the threads are woken and joined once per
innermost row: many regions, each too small to pay for itself.

The same trade-off, without numba: :func:`thread_crossover` times
``parlab.cdist`` with ``n_threads=1`` and ``2`` on growing inputs and finds
the size from which two threads win.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Callable, NamedTuple, Sequence

import numpy as np

import parlab

try:
    import numba
except ImportError:  # numba is an optional extra
    numba = None


def math_op_reference(ar: np.ndarray) -> np.ndarray:
    """What every kernel below computes, in NumPy: an independent check."""
    return np.sin(np.cos(ar) * np.sin(ar))


def _outer(ar):
    for i3 in numba.prange(ar.shape[0]):
        for i2 in range(ar.shape[1]):
            for i1 in range(ar.shape[2]):
                ar[i3, i2, i1] = math.sin(math.cos(ar[i3, i2, i1]) * math.sin(ar[i3, i2, i1]))


def _middle(ar):
    for i3 in range(ar.shape[0]):
        for i2 in numba.prange(ar.shape[1]):
            for i1 in range(ar.shape[2]):
                ar[i3, i2, i1] = math.sin(math.cos(ar[i3, i2, i1]) * math.sin(ar[i3, i2, i1]))


def _inner(ar):
    for i3 in range(ar.shape[0]):
        for i2 in range(ar.shape[1]):
            for i1 in numba.prange(ar.shape[2]):
                ar[i3, i2, i1] = math.sin(math.cos(ar[i3, i2, i1]) * math.sin(ar[i3, i2, i1]))


def _argument_only(ar, parallel=True):
    """The lecture's ``squareIt(ar, parallel=True)`` mistake, on this operation:
    ``parallel`` is an ordinary argument here, so numba compiles ``prange``
    as ``range`` and the loop runs on one thread."""
    for i3 in numba.prange(ar.shape[0]):
        for i2 in range(ar.shape[1]):
            for i1 in range(ar.shape[2]):
                ar[i3, i2, i1] = math.sin(math.cos(ar[i3, i2, i1]) * math.sin(ar[i3, i2, i1]))


class Kernels(NamedTuple):
    """The in-place operation compiled five ways, each ``f(ar) -> None``."""

    serial: Callable[[np.ndarray], None]  # njit, prange on the outer loop: one thread
    outer: Callable[[np.ndarray], None]  # parallel=True, prange outer: one region
    middle: Callable[[np.ndarray], None]  # one region per outer index
    inner: Callable[[np.ndarray], None]  # one region per (outer, middle) pair
    argument_only: Callable[[np.ndarray], None]  # parallel=True as a function argument


@functools.cache
def kernels() -> Kernels | None:
    """The numba kernels, compiled on first use (None when numba is missing)."""
    if numba is None:
        return None
    probe = np.zeros((2, 2, 2))
    built = Kernels(numba.njit(_outer), numba.njit(parallel=True)(_outer),
                    numba.njit(parallel=True)(_middle), numba.njit(parallel=True)(_inner),
                    numba.njit(_argument_only))
    for kernel in built:
        kernel(probe)  # compile now, not inside a timed run
    return built


def regions_opened(shape: Sequence[int], loop: str) -> int:
    """How many parallel regions one call opens with ``prange`` on ``loop``."""
    return {"outer": 1, "middle": shape[0], "inner": shape[0] * shape[1]}[loop]


# ------------------------------------------------------------ parlab's n_threads

class Crossover(NamedTuple):
    """``parlab.cdist`` timed with one and two threads on square inputs of ``sizes`` rows."""

    sizes: list[int]
    one_thread_s: list[float]
    two_threads_s: list[float]

    def ratios(self) -> list[float]:
        """Time with two threads over time with one, per size (< 1: two win)."""
        return [t2 / t1 for t1, t2 in zip(self.one_thread_s, self.two_threads_s)]

    def size(self) -> int | None:
        """The smallest size from which two threads win at every larger size too
        (None: they never do)."""
        found = None
        for size, ratio in zip(self.sizes[::-1], self.ratios()[::-1]):
            if ratio >= 1:
                break
            found = size
        return found


def cdist_inputs(rows: int, columns: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((rows, columns))


def thread_crossover(sizes: Sequence[int], *, repeats: int, min_seconds: float = 0.002,
                     columns: int = 16) -> Crossover:
    """Time ``parlab.cdist(X, X, n_threads=k)`` for k = 1, 2 on every size.

    Calls too short to time alone are looped until the loop lasts
    ``min_seconds``; the two thread counts alternate (1 2 1 2 ...) so that a
    change of load hits both; each time is the median per call.
    """
    one, two = [], []
    for rows in sizes:
        X = cdist_inputs(rows, columns)
        out = np.empty((rows, rows))
        calls = [functools.partial(parlab.cdist, X, X, out=out, n_threads=k) for k in (1, 2)]
        loops = _loops_for(calls[0], min_seconds)
        times: list[list[float]] = [[], []]
        for _ in range(repeats):
            for k, call in enumerate(calls):
                times[k].append(_per_call(call, loops))
        one.append(float(np.median(times[0])))
        two.append(float(np.median(times[1])))
    return Crossover(list(sizes), one, two)


def _loops_for(call: Callable[[], object], min_seconds: float) -> int:
    loops = 1
    while _per_call(call, loops) * loops < min_seconds:
        loops *= 4
    return loops


def _per_call(call: Callable[[], object], loops: int) -> float:
    t0 = time.perf_counter()
    for _ in range(loops):
        call()
    return (time.perf_counter() - t0) / loops
