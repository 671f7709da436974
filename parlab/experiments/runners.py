"""Runners: the ways the lectures start work, each written once.

Serial loops, ``threading.Thread`` (with and without a start barrier), thread
and process pools, ``concurrent.futures`` executors, joblib, one process per
chunk with shared memory, and the two pipelines of lecture 003. A runner
knows nothing about timing or lessons; experiments hand runners to
:meth:`parlab.experiments.framework.Context.measure`.
"""
from __future__ import annotations

import contextlib
import functools
import threading
import time
from multiprocessing import shared_memory
from multiprocessing.pool import ThreadPool
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from parlab.experiments.measuring import Cost
from parlab.workloads.tasks import Task, nap


# ---------------------------------------------------------------- threads

def start_and_join(target: Callable[..., Any], args: Iterable[tuple], *,
                   timeout: float | None = None) -> None:
    """Start one thread per argument tuple, then wait for all.

    Each thread runs as soon as it starts: unlike :func:`run_together` there
    is no barrier, so a run of thousands of threads (one per cell) need not
    keep them all alive at once. Re-raises the first exception a thread
    raised: a failed task must not leave an incomplete result behind. With
    ``timeout``, threads still running after that many seconds are left
    behind (as daemons) and a TimeoutError is raised.
    """
    errors: list[BaseException] = []

    def run(*a: Any) -> None:
        try:
            target(*a)
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=a, daemon=timeout is not None) for a in args]
    for t in threads:
        t.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    for t in threads:
        t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    if deadline is not None and any(t.is_alive() for t in threads):
        raise TimeoutError(f"threads still running after {timeout} s")
    # A thread that failed before a barrier breaks it for the others: its
    # error is the one to report, not their BrokenBarrierError.
    first = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)] or errors
    if first:
        raise first[0]


def run_together(calls: Sequence[Callable[[], Any]], *,
                 before: Callable[[int], Any] | None = None,
                 timeout: float | None = None) -> list[Any]:
    """Run each call in its own thread, all released at once by a barrier.

    Returns the calls' results in order; re-raises the first exception a
    thread raised. The barrier makes the threads really overlap, so that
    races and GIL effects show even for short calls. ``before(j)``, if
    given, runs in thread ``j`` before it waits at the barrier (the tests pin
    each thread to a core there); ``timeout`` bounds the wait at the barrier
    and the whole run (:func:`start_and_join`).
    """
    barrier = threading.Barrier(len(calls), timeout=timeout)
    results: list[Any] = [None] * len(calls)

    def worker(j: int) -> None:
        try:
            if before is not None:
                before(j)
            barrier.wait()
        except BaseException:
            barrier.abort()  # the others would wait for this thread forever
            raise
        results[j] = calls[j]()

    start_and_join(worker, ((j,) for j in range(len(calls))), timeout=timeout)
    return results


def in_sequence(fn: Callable[..., Any], tasks: Sequence[tuple]) -> list:
    """The tasks one after the other in this thread (every serial baseline)."""
    return [fn(*t) for t in tasks]


def per_thread_slots(count: Callable[[int, int], int], n: int, threads: int) -> int:
    """Split ``n`` samples over threads, one result slot each, then reduce.

    Thread j calls ``count(size_j, start_j)`` on its own share of the samples
    and writes into ``slots[j]`` only, so no two threads touch the same
    memory and no lock is needed; the sum afterwards is the reduction.
    """
    sizes = split(n, threads)
    starts = [sum(sizes[:j]) for j in range(threads)]
    slots = [0] * threads

    def fill(j: int) -> None:
        slots[j] = count(sizes[j], starts[j])

    run_together([functools.partial(fill, j) for j in range(threads)])
    return sum(slots)


def split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` near-equal non-negative integers."""
    q, r = divmod(total, parts)
    return [q + (k < r) for k in range(parts)]


# ---------------------------------------------------------------- n tasks of (i, results)

class Outcome(NamedTuple):
    """What the caller sees after running tasks ``0..n-1``."""

    shared: dict  # the dict handed to every task, as the caller sees it afterwards
    returned: list  # each task's return value, in task order


def run_serial(task: Task, n: int) -> Outcome:
    """Run the tasks one after the other in this thread."""
    shared: dict = {}
    return Outcome(shared, [task(i, shared) for i in range(n)])


def run_threads(task: Task, n: int) -> Outcome:
    """One ``threading.Thread`` per task; results are read from the shared dict.

    ``Thread`` drops return values, so like the lecture we rely on the dict the
    threads share with us.
    """
    shared: dict = {}
    run_together([functools.partial(task, i, shared) for i in range(n)])
    return Outcome(shared, [shared.get(i) for i in range(n)])


def run_apply_async(pool, task: Task, n: int) -> Outcome:
    """``pool.apply_async`` per task; return values come back through ``get()``."""
    shared: dict = {}
    pending = [pool.apply_async(task, (i, shared)) for i in range(n)]
    return Outcome(shared, [p.get() for p in pending])


def run_submit(executor, task: Task, n: int) -> Outcome:
    """``executor.submit`` per task (thread or process executor); ``result()`` collects."""
    shared: dict = {}
    futures = [executor.submit(task, i, shared) for i in range(n)]
    return Outcome(shared, [f.result() for f in futures])


def job_plan(ctx, job, how: str, runner: Callable[[Task, int], Outcome], *, backend: str,
             workers: int, shares_memory: bool = True, **kwargs: Any):
    """A plan (:meth:`Context.plan`) running ``runner(job.task, job.n)``, named
    "<job> xN, <how>"; ``kwargs`` go to ``ctx.plan``.

    Its output is correct when every task returned its value and, where the
    tasks share our memory, our dict holds all of them.
    """
    def check(outcome: Outcome) -> bool:
        return job.returned_right(outcome) and (not shares_memory or job.shared_right(outcome))

    expected = "every task's value" + (", also in the caller's dict" if shares_memory else "")
    return ctx.plan(f"{job.name} x{job.n}, {how}", lambda: runner(job.task, job.n),
                    backend=backend, workers=workers, release_gil=job.release_gil,
                    check=check, expected=expected,
                    cost=Cost(work=job.n, tasks=job.n, wait=float(job.waits)), **kwargs)


# ---------------------------------------------------------------- processes

def warm_up(pool, workers: int) -> None:
    """Make a fresh pool start all its workers so their start-up isn't timed.

    Works for ``multiprocessing.Pool`` and ``concurrent.futures`` executors:
    each worker picks up one short nap while the others are still busy.
    """
    list(pool.map(nap, [0.05] * workers, chunksize=1))


def started_pools(stack: contextlib.ExitStack, mp, counts: Iterable[int]) -> dict[int, Any]:
    """A ``multiprocessing.Pool`` of context ``mp`` for each worker count, every
    worker started (:func:`warm_up`) before any clock starts; closed with ``stack``."""
    pools = {k: stack.enter_context(mp.Pool(k)) for k in sorted(set(counts))}
    for k, pool in pools.items():
        warm_up(pool, k)
    return pools


def thread_pools(stack: contextlib.ExitStack, counts: Iterable[int]) -> dict[int, ThreadPool]:
    """A ``multiprocessing.pool.ThreadPool`` (the lecture's dummy Pool) for each
    worker count; its threads start when it is made. Closed with ``stack``."""
    return {k: stack.enter_context(ThreadPool(k)) for k in sorted(set(counts))}


def run_processes(mp, target: Callable[..., None], args: Iterable[tuple]) -> None:
    """One ``Process`` per argument tuple; start all, join all, fail on a bad exit."""
    procs = [mp.Process(target=target, args=a) for a in args]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    codes = [p.exitcode for p in procs if p.exitcode != 0]
    if codes:
        raise RuntimeError(f"worker processes failed with exit codes {codes}")


@contextlib.contextmanager
def shared_matrix(n: int) -> Iterator[str]:
    """A fresh ``n x n`` float64 block of ``multiprocessing.shared_memory``, written
    once (NaN) so that its pages exist before any clock starts; yields its name
    for workers to attach to (:func:`attached_matrix`), freed at the end."""
    shm = shared_memory.SharedMemory(create=True, size=max(1, n * n * 8))
    try:
        np.ndarray((n, n), buffer=shm.buf).fill(np.nan)  # the view goes at once
        yield shm.name
    finally:
        shm.close()
        shm.unlink()


def read_shared_matrix(name: str, n: int) -> np.ndarray:
    """A private copy of the shared ``n x n`` matrix called ``name``."""
    with attached_matrix(name, n) as D:
        return D.copy()


@contextlib.contextmanager
def attached_matrix(name: str, n: int) -> Iterator[np.ndarray]:
    """The shared ``n x n`` matrix called ``name`` as an array, in any process."""
    shm = shared_memory.SharedMemory(name=name)
    try:
        yield np.ndarray((n, n), buffer=shm.buf)
    finally:
        shm.close()


# ---------------------------------------------------------------- joblib

@contextlib.contextmanager
def loky_workers() -> Iterator[None]:
    """Let joblib keep its process workers between calls, and stop them at the end."""
    from joblib.externals.loky import get_reusable_executor

    try:
        yield
    finally:
        get_reusable_executor().shutdown(wait=True)


@contextlib.contextmanager
def joblib_pool(workers: int, prefer: str) -> Iterator[Any]:
    """A ``joblib.Parallel(n_jobs=workers, prefer=prefer)`` whose workers are
    started before any clock starts and kept between calls (joblib's context
    manager), for :func:`joblib_run`.

    joblib keeps one pool of worker processes and resizes it to each new
    ``n_jobs``: two of these with processes and different sizes must not be
    used in turn, or the resizing is what gets timed.
    """
    import joblib

    with joblib.Parallel(n_jobs=workers, prefer=prefer) as parallel:
        parallel(joblib.delayed(nap)(0.05) for _ in range(workers))
        yield parallel


def joblib_run(parallel, fn: Callable[..., Any], tasks: Sequence[tuple], label: str) -> list:
    """The tasks through ``parallel`` (:func:`joblib_pool`) with a tqdm progress
    bar, as the lecture does."""
    import joblib
    from tqdm import tqdm

    return parallel(
        joblib.delayed(fn)(*t) for t in tqdm(tasks, desc=label, disable=None, leave=False))


# ---------------------------------------------------------------- row blocks of a matrix

def row_bounds(n: int, chunks: int) -> list[tuple[int, int]]:
    """``chunks`` nearly equal, non-empty ``(start, stop)`` row ranges covering ``n`` rows."""
    return [(int(c[0]), int(c[-1]) + 1)
            for c in np.array_split(np.arange(n), min(chunks, n))]


def touched_matrix(n: int, m: int | None = None) -> np.ndarray:
    """An ``n x m`` (default ``n x n``) output allocated and written once (NaN)
    before any clock starts: the page faults of a fresh matrix, which a virtual
    machine's host may have to serve again for every run, stay out of the
    timed region, and a block a run leaves unwritten stays NaN, which no check
    accepts."""
    return np.full((n, n if m is None else m), np.nan)


def blocks_in_sequence(task: Callable[..., None], A: np.ndarray,
                       bounds: Sequence[tuple[int, int]], *args: Any,
                       out: np.ndarray | None = None) -> np.ndarray:
    """Fill ``out`` (default: a new matrix), ``task(A, D, start, stop, *args)``
    block after block."""
    D = np.empty((len(A), len(A))) if out is None else out
    for start, stop in bounds:
        task(A, D, start, stop, *args)
    return D


def blocks_in_threads(task: Callable[..., None], A: np.ndarray,
                      bounds: Sequence[tuple[int, int]], *args: Any,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Fill ``out`` (default: a new matrix) with one ``threading.Thread`` per block."""
    D = np.empty((len(A), len(A))) if out is None else out
    start_and_join(task, ((A, D, start, stop, *args) for start, stop in bounds))
    return D


def blocks_in_joblib_threads(task: Callable[..., None], A: np.ndarray,
                             bounds: Sequence[tuple[int, int]], *args: Any,
                             out: np.ndarray | None = None) -> np.ndarray:
    """Fill ``out`` (default: a new matrix) with ``joblib.Parallel(prefer="threads")``,
    one task per block."""
    import joblib

    D = np.empty((len(A), len(A))) if out is None else out
    joblib.Parallel(n_jobs=len(bounds), prefer="threads")(
        joblib.delayed(task)(A, D, a, b, *args) for a, b in bounds)
    return D


# ---------------------------------------------------------------- pipelines (lecture 003)

def sequential(read: Callable[[int], Any], compute: Callable[[Any], Any],
               n: int) -> list[Any]:
    """Read chunk k, then compute on it, for k = 0..n-1."""
    return [compute(read(k)) for k in range(n)]


def double_buffered(read: Callable[[int], Any], compute: Callable[[Any], Any],
                    n: int) -> list[Any]:
    """Read chunk k+1 in a thread while this thread computes chunk k.

    Two buffers: the one being filled by the reader thread and the one being
    computed on; they swap at each step.
    """
    if n == 0:
        return []
    incoming: list[Any] = [None]

    def fill(k: int) -> None:
        incoming[0] = read(k)

    reader = threading.Thread(target=fill, args=(0,))
    reader.start()
    out = []
    for k in range(n):
        reader.join()
        current = incoming[0]
        if k + 1 < n:
            reader = threading.Thread(target=fill, args=(k + 1,))
            reader.start()
        out.append(compute(current))
    return out
