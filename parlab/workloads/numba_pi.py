"""Monte Carlo pi compiled with numba (optional), on parlab's random stream.

Lecture 003 compiles its Monte Carlo loop with numba. Here the loop draws the
same SplitMix64 stream as :func:`parlab.count_hits`, so a numba count can be
compared with the C kernel exactly, sample for sample. numba is optional:
:func:`compiled` returns ``None`` when it is not installed.
"""
from __future__ import annotations

import functools
import sysconfig
from typing import Callable, NamedTuple

import numpy as np

try:
    import numba
except ImportError:  # numba is an optional extra
    numba = None



def why_missing() -> str:
    """Why numba is not here, for the lessons and tests that skip without it."""
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "numba has no free-threaded build (this is free-threaded CPython)"
    return "numba isn't installed (pip install 'parlab[numba]')"


_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_prange = numba.prange if numba is not None else range
_jit = numba.njit if numba is not None else (lambda func: func)


def seed_key(seed: int) -> np.uint64:
    """The stream key parlab derives from ``seed`` (NumPy's SeedSequence convention)."""
    return np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]


def _count_hits(n_samples: int, key: np.uint64, start: int) -> int:
    """Hits among samples ``start..start+n_samples-1`` of the stream ``key``.

    The source that :func:`compiled` hands to numba. Every constant and
    operand is uint64 so arithmetic wraps modulo 2**64. ``prange`` acts as
    ``range`` unless compiled with ``parallel=True``, where the ``hits`` sum
    becomes a reduction over numba's threads.
    """
    hits = 0
    one, two = np.uint64(1), np.uint64(2)
    for k in _prange(n_samples):
        i = np.uint64(start + k)
        x = _unit(_mix(key + (two * i + one) * _GAMMA))
        y = _unit(_mix(key + (two * i + two) * _GAMMA))
        if x * x + y * y <= 1.0:
            hits += 1
    return hits


@_jit
def _mix(z):
    """SplitMix64's output function: scrambles one 64-bit state into random bits."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@_jit
def _unit(bits):
    """The top 53 bits as a float in [0, 1)."""
    return np.float64(bits >> np.uint64(11)) * 2.0 ** -53


class Compiled(NamedTuple):
    """The Monte Carlo count compiled three ways, each ``f(n_samples, key, start)``."""

    held: Callable[[int, np.uint64, int], int]  # plain njit: holds the GIL, like the lecture's
    nogil: Callable[[int, np.uint64, int], int]  # njit(nogil=True): threads run in parallel
    parallel: Callable[[int, np.uint64, int], int]  # njit(parallel=True): numba's own threads


@functools.cache
def compiled() -> Compiled | None:
    """The numba versions, compiled on first use (None when numba is missing)."""
    if numba is None:
        return None

    def build(**options):
        kernel = numba.njit(**options)(_count_hits)
        kernel(1, np.uint64(0), 0)  # compile now, not inside a timed run
        return kernel

    return Compiled(build(), build(nogil=True), build(parallel=True))
