"""Shared test helpers.

``run_threaded``, ``clocked``, ``size_taking`` and ``usable_cores`` are plain
functions: test modules import them with ``from conftest import run_threaded``
(pytest puts this folder on ``sys.path`` because ``tests/`` is not a
package). The ``release_gil`` fixture runs a test once with the GIL released
and once with it held.
"""
from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, settings

from parlab._cores import usable_cores, usable_cpu_ids  # noqa: F401  (for the test modules)
from parlab.experiments.runners import run_together

# Hypothesis profiles, picked with PARLAB_HYPOTHESIS (see the README):
# "ci" (the default) runs 200 examples per property, over 2,000 in all;
# "thorough" runs 10,000 per property, over 10**5 in all.
# The first call of a kernel may page in code and data, and a busy machine
# slows any example: a per-example deadline or the too-slow health check
# would turn that into failures that find nothing.
for _name, _examples in {"ci": 200, "thorough": 10_000}.items():
    settings.register_profile(_name, max_examples=_examples, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("PARLAB_HYPOTHESIS", "ci"))


def pytest_configure(config):
    # pytest-run-parallel's marker (scripts/ci-free-threaded.sh), known without it too.
    config.addinivalue_line("markers", "thread_unsafe(reason): runs in one thread only "
                                       "under pytest-run-parallel")


def run_threaded(fn: Callable[[int], Any], n_threads: int, *,
                 timeout: float = 120.0) -> list[Any]:
    """Run ``fn(i)`` for ``i`` in ``range(n_threads)``, each in its own thread,
    started together (:func:`parlab.experiments.runners.run_together`), so
    that they really contend.

    Where the OS allows, thread ``i`` is pinned to the ``i``-th allowed CPU
    (round robin) before the barrier: otherwise Linux tends to wake the
    threads that the barrier releases on the waker's core, where they queue
    for a scheduler slice (milliseconds) instead of starting at once.
    Returns the results in thread order; re-raises here the first exception
    a thread raised, and a TimeoutError after ``timeout`` seconds.
    """
    cpus = usable_cpu_ids() or []

    def pin(i: int) -> None:
        if cpus:
            os.sched_setaffinity(0, {cpus[i % len(cpus)]})  # this thread only

    return run_together([functools.partial(fn, i) for i in range(n_threads)], before=pin,
                        timeout=timeout)


def clocked(call: Callable[[], Any]) -> tuple[float, float, Any]:
    """``(enter, exit, result)`` of ``call()``, taken with ``time.perf_counter``
    immediately around the call."""
    enter = time.perf_counter()
    result = call()
    exit_ = time.perf_counter()
    return enter, exit_, result


def size_taking(make_call: Callable[[int], Callable[[], Any]], target_s: float,
                start: int = 1000) -> int:
    """The size ``k`` for which ``make_call(k)()`` takes about ``target_s``.

    Grows ``k`` until one call takes at least a fifth of the target (so the
    measurement is not dominated by call overhead), then scales linearly;
    the kernels' time is linear in their size.
    """
    k = start
    while True:
        enter, exit_, _ = clocked(make_call(k))
        elapsed = exit_ - enter
        if elapsed >= target_s / 5:
            return max(1, int(k * target_s / elapsed))
        # Aim a little past a fifth of the target, growing at most 100-fold a step.
        k = int(k * min(100.0, max(2.0, 0.3 * target_s / max(elapsed, 1e-9))))


@pytest.fixture(params=[True, False], ids=["released", "held"])
def release_gil(request) -> bool:
    """Both GIL modes of a kernel."""
    return request.param
