"""Output checks shared by experiments: references that do not rerun the code they judge."""
from __future__ import annotations

import math
from typing import Callable

# A correct Monte Carlo count lands this far from the mean about once in 500 million runs.
SIGMAS = 6


def hits_plausible(n_samples: int) -> Callable[[int], bool]:
    """A check that a hit count out of ``n_samples`` estimates pi within 6 binomial
    standard deviations: true of any correct generator, false of a broken one."""
    p = math.pi / 4
    sigma = math.sqrt(n_samples * p * (1 - p))
    return lambda hits: abs(hits - n_samples * p) < SIGMAS * sigma
