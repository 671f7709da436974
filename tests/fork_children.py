"""What the fork tests of test_hardening.py run in their child processes.

A module of its own, so that spawn and forkserver children import it by name
(and little else); a forked child inherits it as the parent left it: the
shared ``COUNTER``, with its lock possibly taken by a thread that the child
does not have, and any trace the parent was recording.
"""
from __future__ import annotations

import sys

import parlab

COUNTER = parlab.Counter()
CHILD_INCREMENTS = 1000


def trace_own_calls() -> None:
    """Start a trace in this process; it must record this process's calls."""
    with parlab.trace() as tr:
        parlab.cpu_work(10, release_gil=False)
        parlab.io_wait(0.0)
    kernels = tr.events.kernel.tolist()
    assert kernels == ["cpu_work", "io_wait"], kernels


def locked_increments() -> None:
    """Locked increments of ``COUNTER`` in this (single-threaded) process are exact."""
    before = COUNTER.value
    COUNTER.increment(CHILD_INCREMENTS, mode="locked")
    assert COUNTER.value == before + CHILD_INCREMENTS, (before, COUNTER.value)


def native_threads_again() -> None:
    """Calls with native threads in this process (its parent used them too)
    give exactly the single-thread answers."""
    import numpy as np

    X = np.arange(600.0).reshape(200, 3)
    assert np.array_equal(parlab.cdist(X, X, n_threads=2), parlab.cdist(X, X))
    assert (parlab.count_hits(1_000_000, seed=5, n_threads=3)
            == parlab.count_hits(1_000_000, seed=5))


def exit_with_experiments_imported() -> None:
    """Exit 0 where this child holds ``parlab.experiments`` without importing it
    (this module does not): a forkserver that preloaded it forked the child."""
    raise SystemExit(0 if "parlab.experiments" in sys.modules else 1)
