"""Independent NumPy reference for parlab's Monte Carlo generator.

Sample ``i`` (a global index) uses outputs ``2i`` and ``2i+1`` of the
SplitMix64 stream seeded with ``key``, where output ``j`` is
``mix64(key + (j + 1) * GAMMA)``. Everything is vectorised uint64 arithmetic,
which wraps modulo 2**64 exactly as the C code's ``uint64_t`` does.
"""
from __future__ import annotations

import numpy as np

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_BLOCK = 1 << 20  # samples per vectorised block, to bound memory


def seed_key(seed) -> np.uint64:
    """The generator key for ``seed``: the first uint64 word of its SeedSequence."""
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return seq.generate_state(1, np.uint64)[0]


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on a uint64 array."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _unit(bits: np.ndarray) -> np.ndarray:
    """The top 53 bits as a float64 in [0, 1)."""
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def points(key: np.uint64, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The coordinates ``(x, y)`` of samples ``start .. start + n - 1``."""
    i = np.arange(n, dtype=np.uint64) + np.uint64(start)
    two_i = i * np.uint64(2)
    x = _unit(mix64(key + (two_i + np.uint64(1)) * GAMMA))
    y = _unit(mix64(key + (two_i + np.uint64(2)) * GAMMA))
    return x, y


def count_hits(n_samples: int, seed, start: int = 0) -> int:
    """Reference for ``parlab.count_hits(n_samples, seed=seed, start=start)``."""
    key = seed_key(seed)
    hits = 0
    for offset in range(0, n_samples, _BLOCK):
        x, y = points(key, start + offset, min(_BLOCK, n_samples - offset))
        # Two separate float64 products and a sum, as in the C code without fma.
        hits += int(np.count_nonzero(x * x + y * y <= 1.0))
    return hits
