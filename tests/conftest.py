"""Shared test helpers.

``run_threaded``, ``timed``, ``calibrate`` and ``usable_cores`` are plain
functions: test modules import them with ``from conftest import run_threaded``
(pytest puts this folder on ``sys.path`` because ``tests/`` is not a
package). The ``release_gil`` fixture runs a test once with the GIL released
and once with it held.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, settings

from parlab._cores import usable_cores  # noqa: F401  (for the test modules)

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
    """Run ``fn(i)`` for ``i`` in ``range(n_threads)``, each in its own thread.

    A ``threading.Barrier`` makes the threads start their calls together, so
    that they really contend. Where the OS allows, thread ``i`` is pinned to
    the ``i``-th allowed CPU (round robin): otherwise Linux tends to wake the
    threads that the barrier releases on the waker's core, where they queue
    for a scheduler slice (milliseconds) instead of starting at once.
    Returns the results in thread order; if any thread raised, re-raises the
    first exception (by thread index) here.
    """
    barrier = threading.Barrier(n_threads, timeout=timeout)
    results: list[Any] = [None] * n_threads
    errors: list[BaseException | None] = [None] * n_threads
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []

    def worker(i: int) -> None:
        try:
            if cpus:
                os.sched_setaffinity(0, {cpus[i % len(cpus)]})  # this thread only
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors[i] = exc
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(n_threads)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        raise TimeoutError(f"run_threaded: threads still running after {timeout} s")
    # A thread that failed aborts the barrier, which makes the others raise
    # BrokenBarrierError; report the original failure, not those.
    for exc in errors:
        if exc is not None and not isinstance(exc, threading.BrokenBarrierError):
            raise exc
    for exc in errors:
        if exc is not None:
            raise exc
    return results


def timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    """``(enter, exit, result)`` of ``call()``, taken with ``time.perf_counter``
    immediately around the call."""
    enter = time.perf_counter()
    result = call()
    exit_ = time.perf_counter()
    return enter, exit_, result


def calibrate(make_call: Callable[[int], Callable[[], Any]], target_s: float,
              start: int = 1000) -> int:
    """The size ``k`` for which ``make_call(k)()`` takes about ``target_s``.

    Grows ``k`` until one call takes at least a fifth of the target (so the
    measurement is not dominated by call overhead), then scales linearly;
    the kernels' time is linear in their size.
    """
    k = start
    while True:
        enter, exit_, _ = timed(make_call(k))
        elapsed = exit_ - enter
        if elapsed >= target_s / 5:
            return max(1, int(k * target_s / elapsed))
        # Aim a little past a fifth of the target, growing at most 100-fold a step.
        k = int(k * min(100.0, max(2.0, 0.3 * target_s / max(elapsed, 1e-9))))


@pytest.fixture(params=[True, False], ids=["released", "held"])
def release_gil(request) -> bool:
    """Both GIL modes of a kernel."""
    return request.param
