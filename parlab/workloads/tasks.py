"""Waiting and computing tasks, and the threads that share their results.

Lectures 002-004 build their lessons from two kinds of task: one that waits
(``long_io``: I/O, a network reply, a user) and one that computes
(``long_comp``). Both take ``(i, results)`` and store their answer in the
``results`` dict as well as returning it, so one can see who shares memory
with whom. The parlab kernels get the same shape in :func:`kernel_io` and
:func:`kernel_comp`. Every task is a module-level function (bound with
:func:`functools.partial`) so processes can run it too.

Also here: the small shared-state programs of lecture 003 (counters, a
prime search writing into its argument) and the matrix products of lecture
004. How tasks are started (threads, pools) is in
:mod:`parlab.experiments.runners`; an ``outcome`` below is its ``Outcome``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import threading
import time
from typing import Any, Callable

import numpy as np
from threadpoolctl import ThreadpoolController

import parlab
from parlab.presentation import gil_word

Task = Callable[[int, dict], Any]


# --- the two kinds of task --------------------------------------------------

def long_io(i: int, results: dict, *, seconds: float) -> int:
    """Wait ``seconds`` without computing (``time.sleep``), then store and return ``2 * i``."""
    time.sleep(seconds)
    results[i] = 2 * i
    return results[i]


def compute_loop(iterations: int) -> float:
    """The lecture's compute loop: square when x is even, square-root otherwise.

    Bit-identical to :func:`parlab.cpu_work` (both call C's ``pow``), which is
    what makes the C kernel a fair stand-in for this loop.
    """
    x = 0.0
    # The exponent is this call's own float, not the code's shared constant
    # 0.5: on free-threaded 3.13 every use of a shared object updates its one
    # reference count, and threads on other cores fight over it (two threads
    # then run at 0.85x of one, not 1.9x). Same value, same bits.
    half = float("0.5")
    for y in range(iterations):
        if x % 2 == 0:
            x = (x - y) ** 2
        else:
            x = (x + y) ** half
    return x


def long_comp(i: int, results: dict, *, iterations: int) -> float:
    """Run :func:`compute_loop` in pure Python (holding the GIL); store and return x."""
    results[i] = compute_loop(iterations)
    return results[i]


def kernel_io(i: int, results: dict, *, seconds: float, release_gil: bool) -> int:
    """:func:`long_io` with :func:`parlab.io_wait` doing the waiting."""
    parlab.io_wait(seconds, release_gil=release_gil)
    results[i] = 2 * i
    return results[i]


def kernel_comp(i: int, results: dict, *, iterations: int, release_gil: bool) -> float:
    """:func:`long_comp` with :func:`parlab.cpu_work` doing the computing."""
    results[i] = parlab.cpu_work(iterations, release_gil=release_gil)
    return results[i]


def nap(seconds: float) -> None:
    """Sleep; used to make every worker of a fresh pool start before timing."""
    time.sleep(seconds)


def calibrate(run: Callable[[int], Any], seconds: float) -> int:
    """The iteration count for which ``run(iterations)`` takes about ``seconds``."""
    iterations = 1000
    while True:
        t0 = time.perf_counter()
        run(iterations)
        elapsed = time.perf_counter() - t0
        # An eighth of the target is long enough to time and short enough to be cheap.
        if elapsed >= seconds / 8:
            return max(1, round(iterations * seconds / elapsed))
        iterations *= 4


@dataclasses.dataclass(frozen=True)
class Job:
    """``n`` copies of one task and the results they must give, in task order."""

    name: str
    task: Task
    expected: tuple
    release_gil: bool | None = None
    waits: bool = False  # its tasks wait (I/O) rather than compute

    @property
    def n(self) -> int:
        return len(self.expected)

    def returned_right(self, outcome) -> bool:
        """Every task returned its expected value."""
        return list(outcome.returned) == list(self.expected)

    def shared_right(self, outcome) -> bool:
        """The caller's dict holds every result (true only where memory is shared)."""
        return outcome.shared == dict(enumerate(self.expected))


def lecture_jobs(n_tasks: int, seconds: float) -> dict[str, Job]:
    """The lectures' waiting and computing jobs, each task lasting about ``seconds``.

    Keys: ``long_io``, ``long_comp`` (pure Python), ``io_wait released|held``,
    ``cpu_work released|held`` (parlab). Compute sizes are calibrated on this
    machine so that every job has about the same serial time, which makes their
    speedups comparable in one table.
    """
    py_iters = calibrate(compute_loop, seconds)
    c_iters = calibrate(parlab.cpu_work, seconds)
    py_value = parlab.cpu_work(py_iters)  # C gives the pure-Python loop's answer
    c_value = parlab.cpu_work(c_iters)
    waited = tuple(2 * i for i in range(n_tasks))
    jobs = [
        Job("long_io", functools.partial(long_io, seconds=seconds), waited, waits=True),
        Job("long_comp", functools.partial(long_comp, iterations=py_iters),
            (py_value,) * n_tasks),
    ]
    for release in (True, False):
        mode = gil_word(release)
        jobs.append(Job(f"io_wait {mode}",
                        functools.partial(kernel_io, seconds=seconds, release_gil=release),
                        waited, release, waits=True))
        jobs.append(Job(f"cpu_work {mode}",
                        functools.partial(kernel_comp, iterations=c_iters, release_gil=release),
                        (c_value,) * n_tasks, release))
    return {job.name: job for job in jobs}


# --- lecture 003: arguments, counters, overlapping ---------------------------

def is_prime(num: int) -> bool:
    """Trial division up to the square root."""
    if num < 2:
        return False
    return all(num % d for d in range(2, math.isqrt(num) + 1))


def last_prime_scalar(lower: int, upper: int, last: int) -> int:
    """Rebind the parameter ``last`` to each prime found: the caller never sees
    it. Returns the thread's own ``last``, to show where the work went."""
    for num in range(lower, upper + 1):
        if is_prime(num):
            last = num
    return last


def last_prime_slot(lower: int, upper: int, last: list,
                    go: threading.Event | None = None) -> None:
    """Write each prime found into ``last[0]``: the caller's list sees it.

    With ``go``, wait for it first, so the caller can look at the list while
    the thread has certainly not written yet.
    """
    if go is not None:
        go.wait()
    for num in range(lower, upper + 1):
        if is_prime(num):
            last[0] = num


def add_one_each(slot: list, n: int) -> None:
    """The lecture's unprotected ``slot[0] = slot[0] + 1``, n times."""
    for _ in range(n):
        slot[0] = slot[0] + 1


def add_one_each_locked(slot: list, n: int, lock: threading.Lock) -> None:
    """The same under a ``threading.Lock`` taken for every single increment."""
    for _ in range(n):
        with lock:
            slot[0] = slot[0] + 1


# --- lecture 004: NumPy's own threads ----------------------------------------

def random_pair(seed: int, n: int):
    """Two n x n standard-normal matrices from one seed."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n)), rng.standard_normal((n, n))


@functools.cache
def blas_controller() -> ThreadpoolController:
    """This process's BLAS libraries, looked up once: a lookup scans every
    loaded library, too slow to repeat for each product."""
    return ThreadpoolController()


_products = threading.local()


def product_buffer(n: int) -> np.ndarray:
    """This thread's ``n x n`` output for :func:`matmul_job`, kept between calls
    and written once when made, so that its pages exist before the next product."""
    out = getattr(_products, "out", None)
    if out is None or out.shape != (n, n):
        out = _products.out = np.full((n, n), np.nan)
    return out


def prepare_matmul(n: int) -> None:
    """Pool initializer: look up BLAS and make the worker's output before any
    clock starts (a pool's worker runs its tasks in the thread that ran this)."""
    blas_controller()
    product_buffer(n)


def matmul_job(seed: int, *, n: int, threads: int) -> float:
    """Multiply :func:`random_pair` with at most ``threads`` BLAS threads; sum the product.

    Runs inside worker processes too: the limit applies to this process's BLAS only.
    """
    a, b = random_pair(seed, n)
    with blas_controller().limit(limits=threads, user_api="blas"):
        return float(np.matmul(a, b, out=product_buffer(n)).sum())


def matmul_sum_reference(seed: int, n: int) -> float:
    """What :func:`matmul_job` must return, in O(n**2): sum(A @ B) = colsums(A) . rowsums(B)."""
    a, b = random_pair(seed, n)
    return float(a.sum(axis=0) @ b.sum(axis=1))
