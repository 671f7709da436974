"""Long kernel calls stop with KeyboardInterrupt soon after a signal, in both GIL modes.

The issue asks for the interrupt within 0.2 s of SIGINT; the tests allow
1 s (test machines are noisy) and record the measured latency as the
``interrupt_latency_s`` property of each test (shown with ``-rA`` or in the
JUnit XML). Signals reach Python in the main thread, where pytest runs tests.
"""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from typing import Any, Callable

import numpy as np
import pytest

import parlab
from conftest import run_threaded, size_taking

DELAY = 0.3        # seconds from the start of the call to the signal
LONG = 5.0         # length of an uninterrupted call: far past DELAY + the limit
LATENCY_LIMIT = 1.0

pytestmark = [pytest.mark.sanitize, pytest.mark.tsan,
              pytest.mark.skipif(not hasattr(signal, "setitimer"),
                                 reason="needs POSIX interval timers")]


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def arm_alarm(delay: float) -> Callable[[], None]:
    """SIGALRM after ``delay``, handled by raising KeyboardInterrupt; returns disarm."""
    previous = signal.signal(signal.SIGALRM, _raise_keyboard_interrupt)
    signal.setitimer(signal.ITIMER_REAL, delay)

    def disarm() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    return disarm


def arm_sigint(delay: float) -> Callable[[], None]:
    """A real SIGINT from another process after ``delay``, as Ctrl-C sends;
    Python's default handler turns it into KeyboardInterrupt. Returns disarm."""
    # Python's own handler, even where SIGINT was ignored when Python started
    # (as for background jobs of a non-interactive shell).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    sender = subprocess.Popen(["sh", "-c", f"sleep {delay}; kill -INT {os.getpid()}"])

    def disarm() -> None:
        sender.kill()  # no-op once it has sent; otherwise it never will
        sender.wait()
        signal.signal(signal.SIGINT, previous)

    return disarm


def interrupt_latency(call: Callable[[], Any], arm: Callable[[float], Callable[[], None]]
                      ) -> float:
    """Seconds from the signal to KeyboardInterrupt leaving ``call()``.

    The signal is sent no earlier than DELAY after ``before``, so the figure
    is an upper bound of the true latency.
    """
    before = time.perf_counter()
    disarm = arm(DELAY)
    try:
        call()
    except KeyboardInterrupt:
        return time.perf_counter() - (before + DELAY)
    finally:
        disarm()
    pytest.fail(f"returned after {time.perf_counter() - before:.2f} s without "
                "KeyboardInterrupt")


def check_latency(latency: float, record_property) -> None:
    record_property("interrupt_latency_s", round(latency, 4))
    print(f"interrupt latency {latency * 1000:.1f} ms")
    assert 0 <= latency < LATENCY_LIMIT


# Sizes for a call of about LONG seconds, measured once per test session on
# this machine so that a kernel that ignores the signal costs LONG, not hours.
def long_size(make_call: Callable[[int], Callable[[], Any]], start: int) -> int:
    # Calibrated on a 1 s call; the kernels' time is linear in the size.
    return size_taking(make_call, 1.0, start) * int(LONG)


@functools.cache
def long_cpu_work() -> int:
    return long_size(lambda k: lambda: parlab.cpu_work(k), 10_000)


@functools.cache
def long_count_hits() -> int:
    return long_size(lambda k: lambda: parlab.count_hits(k, seed=0), 10_000)


@functools.cache
def long_increment(mode: str) -> int:
    return long_size(lambda k: lambda: parlab.Counter().increment(k, mode=mode), 10_000)


CDIST_ROWS = 2000


@functools.cache
def long_cdist_columns() -> int:
    """Columns of a (CDIST_ROWS, k) matrix whose cdist with itself takes LONG."""
    def make(k: int):
        X = np.ones((CDIST_ROWS, k))
        return lambda: parlab.cdist(X, X)

    return long_size(make, 8)


# One output row of WIDE_ROW_STEPS multiply-adds (XB's rows broadcast from one,
# so it costs no memory): work between two clock reads must be cut inside rows.
WIDE_N = 10_000
WIDE_ROW_STEPS = 10**8


@functools.cache
def long_wide_cdist_rows() -> int:
    def make(k: int):
        XA = np.broadcast_to(np.ones(WIDE_N), (k, WIDE_N))
        XB = np.broadcast_to(np.zeros(WIDE_N), (WIDE_ROW_STEPS // WIDE_N, WIDE_N))
        return lambda: parlab.cdist(XA, XB)

    return long_size(make, 1)


def long_call(kernel: str, release_gil: bool) -> Callable[[], Any]:
    if kernel == "io_wait":
        return lambda: parlab.io_wait(2 * LONG, release_gil=release_gil)
    if kernel == "cpu_work":
        n = long_cpu_work()
        return lambda: parlab.cpu_work(n, release_gil=release_gil)
    if kernel in ("count_hits", "estimate_pi"):
        n = long_count_hits()
        return lambda: getattr(parlab, kernel)(n, seed=1, release_gil=release_gil)
    if kernel == "cdist":
        X = np.random.default_rng(1).random((CDIST_ROWS, long_cdist_columns()))
        return lambda: parlab.cdist(X, X, release_gil=release_gil)
    if kernel == "cdist-wide-rows":
        XA = np.broadcast_to(np.ones(WIDE_N), (long_wide_cdist_rows(), WIDE_N))
        XB = np.broadcast_to(np.zeros(WIDE_N), (WIDE_ROW_STEPS // WIDE_N, WIDE_N))
        return lambda: parlab.cdist(XA, XB, release_gil=release_gil)
    if kernel == "increment":
        n = long_increment("atomic")
        return lambda: parlab.Counter().increment(n, mode="atomic", release_gil=release_gil)
    raise AssertionError(kernel)


ALL_KERNELS = ["io_wait", "cpu_work", "count_hits", "estimate_pi", "cdist", "cdist-wide-rows",
               "increment"]


@pytest.mark.parametrize("kernel", ALL_KERNELS)
def test_kernel_interrupted(kernel, release_gil, record_property):
    call = long_call(kernel, release_gil)
    check_latency(interrupt_latency(call, arm_alarm), record_property)


@pytest.mark.parametrize("mode", ["racy", "locked", "atomic"])
def test_counter_interrupted_keeps_increments(mode, release_gil, record_property):
    n = long_increment(mode)
    c = parlab.Counter()
    latency = interrupt_latency(lambda: c.increment(n, mode=mode, release_gil=release_gil),
                                arm_alarm)
    check_latency(latency, record_property)
    assert 0 < c.value < n
    # The counter still works, and the lock was not left held: from another
    # thread, so a deadlock shows up as a timeout rather than a hung run.
    before = c.value
    run_threaded(lambda _: c.increment(10, mode=mode), 1, timeout=30)
    assert c.value == before + 10


@pytest.mark.parametrize("kernel", ALL_KERNELS)
def test_real_sigint(kernel, release_gil, record_property):
    call = long_call(kernel, release_gil)
    check_latency(interrupt_latency(call, arm_sigint), record_property)
