"""Lecture 001: multiprocessing pools, thread pools and joblib.

The Monte Carlo experiments run ``parlab.count_hits`` over tasks that carry a
seed and a start offset, so however the tasks are spread over workers the
total equals one serial call exactly. The lecture's pure-Python Monte Carlo
(:mod:`parlab.reference.montecarlo`) is much slower, so it runs on fewer
samples; its rows are named "pure Python: ..." and their speedups are
relative to the pure-Python serial row, not to the kernel's baseline.
"""
from __future__ import annotations

import contextlib
import math
import time
from multiprocessing.pool import ThreadPool
from typing import Any, Callable, Iterator, Sequence

import joblib
import numpy as np
from joblib.externals.loky import get_reusable_executor
from scipy.spatial.distance import cdist as scipy_cdist
from tqdm import tqdm

import parlab
from parlab.experiments._base import Context, Result, experiment
from parlab.experiments._checks import hits_plausible
from parlab.experiments._fair import (
    no_speedup_lesson, overlap_lesson, oversubscribed_lesson, speedup_lesson,
)
from parlab.experiments.lecture0 import close_to, row_bounds
from parlab.reference import distance, montecarlo
from parlab.reference.tasks import gil_word

LECTURE = "001_d10b89a22302e4b9.txt"
PURE = "pure Python: "


# ---------------------------------------------------------------- shared pieces

@contextlib.contextmanager
def loky_workers() -> Iterator[None]:
    """Let joblib keep its process workers between calls, and stop them at the end."""
    try:
        yield
    finally:
        get_reusable_executor().shutdown(wait=True)


def hits(n_samples: int, seed: int, start: int, release_gil: bool) -> int:
    """Process or thread task: ``parlab.count_hits`` on one slice of the stream."""
    return parlab.count_hits(n_samples, seed=seed, start=start, release_gil=release_gil)


def kernel_tasks(p: dict[str, Any], release_gil: bool) -> list[tuple]:
    """``p["tasks"]`` consecutive slices of one seeded stream, as ``hits`` arguments."""
    n = p["samples"]
    return [(n, p["seed"], k * n, release_gil) for k in range(p["tasks"])]


def plausible_counts(p: dict[str, Any]) -> Callable[[list], bool]:
    """The serial kernel run's check: its task counts together estimate pi plausibly.
    Every split of the same stream must then give exactly those counts."""
    plausible = hits_plausible(p["tasks"] * p["samples"])
    return lambda counts: plausible(sum(counts))


def pure_tasks(p: dict[str, Any]) -> list[tuple]:
    """``p["tasks"]`` independently seeded pure-Python tasks of ``p["pure_samples"]``."""
    return [(p["pure_samples"], p["seed"] + k) for k in range(p["tasks"])]


def in_sequence(fn: Callable[..., Any], tasks: Sequence[tuple]) -> list:
    """The tasks one after the other in this thread (every serial baseline)."""
    return [fn(*t) for t in tasks]


def pool_starmap(ctx: Context, workers: int, fn: Callable[..., Any],
                 tasks: Sequence[tuple]) -> list:
    """The tasks over a fresh ``multiprocessing.Pool`` (its start-up included)."""
    with ctx.mp.Pool(workers) as pool:
        return pool.starmap(fn, tasks)


def joblib_run(workers: int, prefer: str, fn: Callable[..., Any],
               tasks: Sequence[tuple], label: str) -> list:
    """The tasks through ``joblib.Parallel`` with a tqdm progress bar, as the lecture does."""
    return joblib.Parallel(n_jobs=workers, prefer=prefer)(
        joblib.delayed(fn)(*t) for t in tqdm(tasks, desc=label, disable=None, leave=False))


def pure_serial(ctx: Context) -> tuple[list[tuple], list[int]]:
    """Measure the pure-Python tasks in a loop; returns the tasks and their counts.

    The counts must estimate pi plausibly (:func:`hits_plausible`); every
    parallel run of the same seeded tasks must then give exactly these counts.
    """
    p = ctx.params
    tasks = pure_tasks(p)
    plausible = hits_plausible(p["tasks"] * p["pure_samples"])
    counts = ctx.measure(PURE + "serial", lambda: in_sequence(montecarlo.count_hits, tasks),
                         backend="serial", speedup_over=PURE + "serial",
                         check=lambda got: plausible(sum(got)))
    return tasks, counts


# ---------------------------------------------------------------- L1.1

def root_sum(chunk: np.ndarray) -> float:
    """The lecture's ``sqrt(i ** 2)`` over an integer chunk, summed in pure Python."""
    return sum(math.sqrt(i ** 2) for i in chunk.tolist())


def root_sum_between(start: int, stop: int) -> float:
    """``root_sum`` of the integers ``start`` to ``stop - 1``: two arguments, for ``starmap``."""
    return root_sum(np.arange(start, stop))


@experiment("L1.1", title="Pool.map and Pool.starmap over array_split chunks",
            lecture=LECTURE,
            shows="map hands each chunk to a worker, starmap unpacks argument tuples; "
                  "both return every result in input order, and the pool speeds up "
                  "pure Python.",
            sizes={"tiny": dict(n=2_000, chunks=8), "quick": dict(n=4_000_000, chunks=16),
                   "full": dict(n=20_000_000, chunks=64)})
def pool_map(ctx: Context) -> Result:
    p = ctx.params
    chunks = np.array_split(np.arange(p["n"]), p["chunks"])
    bounds = row_bounds(p["n"], p["chunks"])
    # sqrt(i ** 2) == i exactly here, so integer sums are an independent reference.
    expected = [float(sum(range(a, b))) for a, b in bounds]

    def check(got: list) -> bool:
        return got == expected

    ctx.measure("serial loop", lambda: in_sequence(root_sum, [(c,) for c in chunks]),
                backend="serial", check=check, baseline=True)
    mapped = {k: ctx.measure(f"Pool({k}).map", lambda: _pool_map(ctx, k, chunks),
                             backend="multiprocessing.Pool", workers=k, check=check)
              for k in ctx.worker_counts()}
    c = ctx.cores
    starmapped = ctx.measure(f"Pool({c}).starmap over (start, stop)",
                             lambda: pool_starmap(ctx, c, root_sum_between, bounds),
                             backend="multiprocessing.Pool", workers=c, check=check)
    mapped = mapped[c]
    ctx.lesson("map and starmap return every chunk's result in input order",
               mapped == expected and starmapped == expected,
               f"{len(chunks)} chunks; map in order: {mapped == expected}, "
               f"starmap in order: {starmapped == expected}")
    speedup_lesson(ctx, "A pool of processes speeds up pure Python", f"Pool({c}).map", None, c)
    return ctx.result()


def _pool_map(ctx: Context, workers: int, chunks: list) -> list:
    with ctx.mp.Pool(workers) as pool:
        return pool.map(root_sum, chunks)


# ---------------------------------------------------------------- L1.2

MONTE_CARLO_SIZES = {
    "tiny": dict(tasks=10, samples=100_000, pure_samples=2_000, seed=2024, oversubscribe=4),
    "quick": dict(tasks=10, samples=20_000_000, pure_samples=200_000, seed=2024,
                  oversubscribe=8),
    "full": dict(tasks=10, samples=100_000_000, pure_samples=1_000_000, seed=2024,
                 oversubscribe=40),
}


def _oversubscribed(ctx: Context) -> int:
    # Well above the core count whatever the machine (the lecture: 40 on 8 cores).
    return max(ctx.params["oversubscribe"], 2 * ctx.cores)


@experiment("L1.2", title="Monte Carlo pi over process pools",
            lecture=LECTURE,
            shows="A pool of cpu_count() processes speeds the estimate up; more "
                  "processes than cores bring no further gain.",
            sizes=MONTE_CARLO_SIZES)
def monte_carlo_pool(ctx: Context) -> Result:
    p = ctx.params
    tasks = kernel_tasks(p, True)
    over = _oversubscribed(ctx)
    check = ctx.measure("serial", lambda: in_sequence(hits, tasks), backend="serial",
                        release_gil=True, check=plausible_counts(p), baseline=True).__eq__
    for k in ctx.worker_counts(oversubscribe=over):
        ctx.measure(f"Pool({k})", lambda: pool_starmap(ctx, k, hits, tasks),
                    backend="multiprocessing.Pool", workers=k, release_gil=True,
                    check=check)
    ptasks, counts = pure_serial(ctx)
    for k in (ctx.cores, over):
        ctx.measure(PURE + f"Pool({k})",
                    lambda: pool_starmap(ctx, k, montecarlo.count_hits, ptasks),
                    backend="multiprocessing.Pool", workers=k, check=counts.__eq__,
                    speedup_over=PURE + "serial")
    speedup_lesson(ctx, "A pool of cpu_count() processes speeds up the kernel",
                   f"Pool({ctx.cores})", None, ctx.cores)
    oversubscribed_lesson(ctx, "More processes than cores bring no further speedup",
                          f"Pool({over})", f"Pool({ctx.cores})")
    speedup_lesson(ctx, "The pool speeds up the pure-Python Monte Carlo too",
                   PURE + f"Pool({ctx.cores})", PURE + "serial", ctx.cores)
    return ctx.result()


# ---------------------------------------------------------------- L1.3

def wait_kernel(i: int, seconds: float, release_gil: bool) -> int:
    """Thread task: an I/O-like wait in parlab; returns its index."""
    parlab.io_wait(seconds, release_gil=release_gil)
    return i


def wait_sleep(i: int, seconds: float) -> int:
    """Thread task: the same wait with ``time.sleep``; returns its index."""
    time.sleep(seconds)
    return i


def thread_pool(workers: int, fn: Callable[..., Any], tasks: Sequence[tuple]) -> list:
    """The tasks over a ``multiprocessing.pool.ThreadPool`` (the lecture's dummy Pool)."""
    with ThreadPool(workers) as pool:
        return pool.starmap(fn, tasks)


@experiment("L1.3", title="A thread pool for I/O-bound calls",
            lecture=LECTURE,
            shows="Waiting threads overlap: n waits take about the time of one, unless "
                  "the wait holds the GIL.",
            sizes={"tiny": dict(tasks=4, seconds=0.01), "quick": dict(tasks=8, seconds=0.05),
                   "full": dict(tasks=16, seconds=0.2)})
def io_thread_pool(ctx: Context) -> Result:
    n, secs = ctx.params["tasks"], ctx.params["seconds"]
    in_order = list(range(n))

    def check(got: list) -> bool:
        return got == in_order

    waits = [(i, secs, True) for i in in_order]
    ctx.measure("serial, io_wait", lambda: in_sequence(wait_kernel, waits),
                backend="serial", release_gil=True, check=check, baseline=True)
    for release in (True, False):
        tasks = [(i, secs, release) for i in in_order]
        ctx.measure(f"ThreadPool, io_wait {gil_word(release)}",
                    lambda: thread_pool(n, wait_kernel, tasks),
                    backend="multiprocessing.pool.ThreadPool", workers=n,
                    release_gil=release, check=check)
    ctx.measure("ThreadPool, time.sleep",
                lambda: thread_pool(n, wait_sleep, [(i, secs) for i in in_order]),
                backend="multiprocessing.pool.ThreadPool", workers=n, check=check)
    for variant, text in (("ThreadPool, io_wait released",
                           "Threads overlap waits: n waits take about the time of one"),
                          ("ThreadPool, time.sleep",
                           "time.sleep releases the GIL, so pure-Python waits overlap too")):
        overlap_lesson(ctx, text, variant, None, n)
    no_speedup_lesson(ctx, "A wait that holds the GIL blocks every thread: no overlap",
                      "ThreadPool, io_wait held", None)
    return ctx.result()


# ---------------------------------------------------------------- L1.4

@experiment("L1.4", title="joblib: threads vs processes, n_jobs vs cores",
            lecture=LECTURE,
            shows="joblib threads help only a GIL-releasing kernel, processes help any "
                  "code; n_jobs far above the core count gains nothing.",
            sizes={
                "tiny": dict(tasks=10, samples=100_000, pure_samples=2_000, seed=7,
                             oversubscribe=4),
                "quick": dict(tasks=10, samples=10_000_000, pure_samples=200_000, seed=7,
                              oversubscribe=8),
                "full": dict(tasks=10, samples=100_000_000, pure_samples=1_000_000, seed=7,
                             oversubscribe=40),
            })
def joblib_backends(ctx: Context) -> Result:
    p = ctx.params
    released, held = kernel_tasks(p, True), kernel_tasks(p, False)
    n_jobs = ctx.worker_counts(oversubscribe=_oversubscribed(ctx))
    with loky_workers():
        check = ctx.measure("serial", lambda: in_sequence(hits, released), backend="serial",
                            release_gil=True, check=plausible_counts(p), baseline=True).__eq__
        for k in n_jobs:
            ctx.measure(f"threads n_jobs={k}, released",
                        lambda: joblib_run(k, "threads", hits, released, "threads"),
                        backend="joblib[threads]", workers=k, release_gil=True, check=check)
        ctx.measure(f"threads n_jobs={ctx.cores}, held",
                    lambda: joblib_run(ctx.cores, "threads", hits, held, "threads"),
                    backend="joblib[threads]", workers=ctx.cores, release_gil=False,
                    check=check)
        for k in n_jobs:
            ctx.measure(f"processes n_jobs={k}, held",
                        lambda: joblib_run(k, "processes", hits, held, "processes"),
                        backend="joblib[processes]", workers=k, release_gil=False,
                        check=check)
        ptasks, counts = pure_serial(ctx)
        for prefer in ("threads", "processes"):
            ctx.measure(PURE + f"{prefer} n_jobs={ctx.cores}",
                        lambda: joblib_run(ctx.cores, prefer, montecarlo.count_hits,
                                           ptasks, prefer),
                        backend=f"joblib[{prefer}]", workers=ctx.cores, check=counts.__eq__,
                        speedup_over=PURE + "serial")
    c, over = ctx.cores, n_jobs[-1]
    speedup_lesson(ctx, "joblib threads speed up a kernel that releases the GIL",
                   f"threads n_jobs={c}, released", None, c)
    no_speedup_lesson(ctx, "joblib threads give nothing when the kernel holds the GIL",
                      f"threads n_jobs={c}, held", None)
    speedup_lesson(ctx, "joblib processes speed up even a kernel that holds the GIL",
                   f"processes n_jobs={c}, held", None, c)
    for kind, release in (("threads", "released"), ("processes", "held")):
        oversubscribed_lesson(ctx, f"n_jobs far above the core count gains nothing ({kind})",
                              f"{kind} n_jobs={over}, {release}", f"{kind} n_jobs={c}, {release}")
    speedup_lesson(ctx, "Pure Python: joblib processes speed it up",
                   PURE + f"processes n_jobs={c}", PURE + "serial", c)
    no_speedup_lesson(ctx, "Pure Python: joblib threads do not",
                      PURE + f"threads n_jobs={c}", PURE + "serial")
    return ctx.result()


# ---------------------------------------------------------------- L1.5

def kernel_block(xs: np.ndarray, ys: np.ndarray, release_gil: bool) -> np.ndarray:
    """Pool task: the distance block of ``xs`` against ``ys`` through parlab."""
    return parlab.cdist(xs, ys, release_gil=release_gil)


@experiment("L1.5", title="The lab: pure-loop cdist over pools",
            lecture=LECTURE,
            shows="Over row chunks of a GIL-holding loop, processes help and threads "
                  "don't; a kernel beats every parallel version of the loop.",
            sizes={"tiny": dict(m=24, n=24, p=8, chunks=4, seed=5),
                   "quick": dict(m=240, n=240, p=100, chunks=24, seed=5),
                   "full": dict(m=1000, n=1000, p=100, chunks=100, seed=5)})
def lab(ctx: Context) -> Result:
    p = ctx.params
    rng = np.random.default_rng(p["seed"])
    X, Y = rng.random((p["m"], p["p"])), rng.random((p["n"], p["p"]))
    ref = scipy_cdist(X, Y)
    check = close_to(ref)
    blocks = np.array_split(X, p["chunks"])
    pure = [(xs, Y) for xs in blocks]
    c = ctx.cores
    with loky_workers():
        ctx.measure("serial, pure loop", lambda: distance.cdist_loop(X, Y), backend="serial",
                    check=check, baseline=True)
        ctx.measure("Pool.starmap, pure loop",
                    lambda: np.concatenate(pool_starmap(ctx, c, distance.cdist_loop, pure)),
                    backend="multiprocessing.Pool", workers=c, check=check)
        ctx.measure("ThreadPool.starmap, pure loop",
                    lambda: np.concatenate(thread_pool(c, distance.cdist_loop, pure)),
                    backend="multiprocessing.pool.ThreadPool", workers=c, check=check)
        ctx.measure("joblib processes, pure loop",
                    lambda: np.concatenate(joblib_run(c, "processes", distance.cdist_loop,
                                                      pure, "lab")),
                    backend="joblib[processes]", workers=c, check=check)
        ctx.measure("serial, parlab.cdist released", lambda: kernel_block(X, Y, True),
                    backend="serial", release_gil=True, check=check)
        for release in (True, False):
            tasks = [(xs, Y, release) for xs in blocks]
            ctx.measure(f"ThreadPool.starmap, parlab.cdist {gil_word(release)}",
                        lambda: np.concatenate(thread_pool(c, kernel_block, tasks)),
                        backend="multiprocessing.pool.ThreadPool", workers=c,
                        release_gil=release, check=check)
    for variant in ("Pool.starmap, pure loop", "joblib processes, pure loop"):
        speedup_lesson(ctx, f"Processes speed up the pure loop ({variant.split(',')[0]})",
                       variant, None, c)
    no_speedup_lesson(ctx, "Threads don't: the pure loop holds the GIL",
                      "ThreadPool.starmap, pure loop", None)
    best = max(ctx.speedup(v) for v in ("Pool.starmap, pure loop",
                                        "ThreadPool.starmap, pure loop",
                                        "joblib processes, pure loop"))
    s = ctx.speedup("serial, parlab.cdist released")
    ctx.lesson("One compiled kernel call beats every parallel version of the loop",
               s > 10 * best, f"kernel {s:.0f}x vs best parallel loop {best:.2f}x "
                              "(needs 10 times more)")
    return ctx.result()
