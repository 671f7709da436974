"""Monte Carlo estimate of pi in a plain Python loop, as the lectures write it.

Each call draws from its own ``random.Random(seed)``, so a list of
``(n_samples, seed)`` tasks gives the same counts whether it runs in a loop,
in threads or in processes.
"""
from __future__ import annotations

import random


def count_hits(n_samples: int, seed: int = 0) -> int:
    """How many of ``n_samples`` uniform points of the unit square fall in the quarter circle."""
    rng = random.Random(seed)
    hits = 0
    for _ in range(n_samples):
        x = rng.random()
        y = rng.random()
        if x * x + y * y <= 1.0:
            hits += 1
    return hits
