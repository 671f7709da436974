"""Lecture 003's last example: where to open the parallel region (L3.6).

The lecture applies ``sin(cos(x) * sin(x))`` to every element of a 3-D array
with numba, putting ``prange`` on the outer, the middle or the inner loop.
Each pass of the loops around a ``prange`` opens and closes one parallel
region, so with ``prange`` inside, the threads are woken and joined once per
innermost row: many regions, each too small to pay for itself.

The same trade-off, without numba: ``parlab.cdist`` with ``n_threads=1`` and
``2`` on growing inputs; :class:`Crossover` finds the size from which two
threads win.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Callable, NamedTuple, Sequence

import numpy as np


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

def cdist_inputs(rows: int, columns: int = 16, seed: int = 0) -> np.ndarray:
    """The square problem of the crossover: ``cdist(X, X)`` for this ``X``."""
    return np.random.default_rng(seed).random((rows, columns))


def loops_for(call: Callable[[], object], min_seconds: float) -> int:
    """How many calls in a row last at least ``min_seconds`` (a power of 4)."""
    loops = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(loops):
            call()
        if time.perf_counter() - t0 >= min_seconds:
            return loops
        loops *= 4


def batch(call: Callable[[], object], loops: int) -> Callable[[], object]:
    """A function making ``loops`` calls, returning the last one's result: calls
    too short to time alone are timed as a batch."""
    def run() -> object:
        for _ in range(loops - 1):
            call()
        return call()

    return run


class Crossover(NamedTuple):
    """Seconds per call with one and with two threads, on inputs of ``sizes`` rows."""

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
