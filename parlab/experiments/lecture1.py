"""Lecture 001: multiprocessing pools, thread pools and joblib.

The Monte Carlo experiments run ``parlab.count_hits`` over tasks that carry a
seed and a start offset, so however the tasks are spread over workers the
total equals one serial call exactly. The lecture's pure-Python Monte Carlo
(:mod:`parlab.workloads.montecarlo`) is much slower, so it runs on fewer
samples; its rows are named "pure Python: ..." and their speedups are
relative to the pure-Python serial row, not to the kernel's baseline.
"""
from __future__ import annotations

import contextlib
import functools
import math
import time
from typing import Any, Callable

import numpy as np
from scipy.spatial.distance import cdist as scipy_cdist

import parlab
from parlab.experiments import judging
from parlab.experiments.framework import Context, Cost, Result, Variant, experiment
from parlab.experiments.runners import (
    in_sequence, joblib_pool, joblib_run, loky_workers, row_bounds, started_pools, thread_pools,
    touched_matrix,
)
from parlab.presentation import gil_word
from parlab.workloads import distance, montecarlo

LECTURE = "001_d10b89a22302e4b9.txt"
PURE = "pure Python: "


# ---------------------------------------------------------------- shared pieces

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
    plausible = judging.hits_plausible(p["tasks"] * p["samples"])
    return lambda counts: plausible(sum(counts))


def pure_tasks(p: dict[str, Any]) -> list[tuple]:
    """``p["tasks"]`` independently seeded pure-Python tasks of ``p["pure_samples"]``."""
    return [(p["pure_samples"], p["seed"] + k) for k in range(p["tasks"])]


def pure_comparison(ctx: Context, parallel: dict[str, tuple[str, int, Callable]]
                    ) -> tuple[Variant, dict[str, Variant]]:
    """The pure-Python tasks in a loop, interleaved with ``parallel``: name ->
    (backend, workers, runner), where ``runner(fn, tasks)`` runs them.

    The serial counts must estimate pi plausibly (:func:`judging.hits_plausible`);
    every parallel run of the same seeded tasks must give exactly these counts.
    Speedups are over the pure-Python serial row.
    """
    p = ctx.params
    tasks = pure_tasks(p)
    cost = Cost(tasks=len(tasks))
    plausible = judging.hits_plausible(p["tasks"] * p["pure_samples"])
    serial = ctx.plan(PURE + "serial", lambda: in_sequence(montecarlo.count_hits, tasks),
                      backend="serial", check=lambda got: plausible(sum(got)), cost=cost)
    serial.speedup_over = serial
    plans = [ctx.plan(PURE + name, lambda run=run: run(montecarlo.count_hits, tasks),
                      backend=backend, workers=workers, speedup_over=serial,
                      check=lambda got: got == serial.output, cost=cost)
             for name, (backend, workers, run) in parallel.items()]
    first, *rest = ctx.compare(serial, *plans)
    return first, dict(zip(parallel, rest))


def kernel_comparison(ctx: Context, serial_name: str, tasks: list[tuple],
                      parallel: dict[str, tuple[str, int, bool, Callable]]
                      ) -> tuple[Variant, dict[str, Variant]]:
    """``hits`` over ``tasks`` in a loop (the baseline), interleaved with
    ``parallel``: name -> (backend, workers, release_gil, runner), where
    ``runner(fn, tasks)`` runs the tasks; each must give the serial counts."""
    cost = Cost(tasks=len(tasks))
    serial = ctx.plan(serial_name, lambda: in_sequence(hits, tasks), backend="serial",
                      release_gil=tasks[0][-1], check=plausible_counts(ctx.params), cost=cost)
    plans = [ctx.plan(name, lambda run=run: run(hits, tasks), backend=backend,
                      workers=workers, release_gil=release,
                      check=lambda got: got == serial.output, cost=cost)
             for name, (backend, workers, release, run) in parallel.items()]
    first, *rest = ctx.compare(serial, *plans, versus_first=True)
    return first, dict(zip(parallel, rest))


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
            sizes={"tiny": dict(n=2_000, chunks=8), "quick": dict(n=10_000_000, chunks=16),
                   "full": dict(n=20_000_000, chunks=64)},
            timer="one map or starmap call over every chunk, sending the chunks to the workers "
                  "and their results back (or the serial loop over the chunks); the pools are "
                  "started, every worker running, before timing.")
def pool_map_experiment(ctx: Context) -> Result:
    p = ctx.params
    n_chunks = ctx.task_count(p["chunks"])
    chunks = np.array_split(np.arange(p["n"]), n_chunks)
    bounds = row_bounds(p["n"], n_chunks)
    # sqrt(i ** 2) == i exactly here, so integer sums are an independent reference.
    expected = [float(sum(range(a, b))) for a, b in bounds]
    c = ctx.cores
    # Open until the lessons are judged: a lesson may measure more rounds.
    with contextlib.ExitStack() as stack:
        pools = started_pools(stack, ctx.mp, ctx.worker_counts())
        plans = [ctx.plan("serial loop", lambda: in_sequence(root_sum, [(ch,) for ch in chunks]),
                          backend="serial", check=expected.__eq__, baseline=True)]
        cost = Cost(tasks=len(chunks))
        plans += [ctx.plan(f"Pool({k}).map", functools.partial(pool.map, root_sum, chunks),
                           backend="multiprocessing.Pool", workers=k, check=expected.__eq__,
                           cost=cost)
                  for k, pool in pools.items()]
        plans.append(ctx.plan(f"Pool({c}).starmap over (start, stop)",
                              functools.partial(pools[c].starmap, root_sum_between, bounds),
                              backend="multiprocessing.Pool", workers=c, check=expected.__eq__,
                              cost=cost))
        serial, *mapped_by, starmapped = ctx.compare(*plans)
        mapped = mapped_by[-1]
        judging.fact(ctx, "map and starmap return every chunk's result in input order",
                     mapped.correct and starmapped.correct,
                     f"{len(chunks)} chunks; map in order: {mapped.correct}, "
                     f"starmap in order: {starmapped.correct}")
        judging.speedup(ctx, "A pool of processes speeds up pure Python", mapped, serial)
    return ctx.result()


# ---------------------------------------------------------------- L1.2

# "samples" and "pure_samples" are per task on a machine of up to 5 cores;
# on more, the same work is split into 2 tasks per core (monte_carlo_params).
MONTE_CARLO_SIZES = {
    "tiny": dict(tasks=10, samples=100_000, pure_samples=2_000, seed=2024),
    "quick": dict(tasks=10, samples=30_000_000, pure_samples=500_000, seed=2024),
    "full": dict(tasks=10, samples=100_000_000, pure_samples=1_000_000, seed=2024),
}


def spread_over_cores(ctx: Context) -> None:
    """Split the experiment's work into enough tasks for every core (ten
    tasks leave cores idle on a machine of more than ten); the same work."""
    p = ctx.params
    tasks = ctx.task_count(p["tasks"])
    p.update(samples=p["samples"] * p["tasks"] // tasks,
             pure_samples=p["pure_samples"] * p["tasks"] // tasks, tasks=tasks)


def starmap_runner(pool) -> Callable:
    # One task at a time: with starmap's default chunksize (a quarter of the
    # tasks per process), 10 tasks on 2 processes go out in 5 chunks of 2,
    # three to one process and two to the other, so Pool(2) waits for 6 tasks'
    # time while Pool(8) gets chunks of 1 and balances them 5 and 5: 0.83x,
    # which is the chunking, not the number of processes.
    return lambda fn, tasks: pool.starmap(fn, tasks, chunksize=1)


@experiment("L1.2", title="Monte Carlo pi over process pools",
            lecture=LECTURE,
            shows="A pool of cpu_count() processes speeds the estimate up; more "
                  "processes than cores bring no further gain.",
            sizes=MONTE_CARLO_SIZES,
            timer="one starmap call running every task on the pool and collecting the counts "
                  "(or the tasks in a loop); every pool is started, all its workers running, "
                  "before timing.")
def monte_carlo_pool(ctx: Context) -> Result:
    spread_over_cores(ctx)
    c, over = ctx.cores, ctx.oversubscribed
    with contextlib.ExitStack() as stack:
        pools = started_pools(stack, ctx.mp, ctx.worker_counts(oversubscribe=over))
        serial, by_pool = kernel_comparison(ctx, "serial", kernel_tasks(ctx.params, True), {
            f"Pool({k})": ("multiprocessing.Pool", k, True, starmap_runner(pool))
            for k, pool in pools.items()})
        pure, pure_pools = pure_comparison(ctx, {
            f"Pool({k})": ("multiprocessing.Pool", k, starmap_runner(pools[k])) for k in (c, over)})
        can = judging.speedup(ctx, "A pool of cpu_count() processes speeds up the kernel",
                              by_pool[f"Pool({c})"], serial)
        judging.oversubscribed(ctx, "More processes than cores bring no further speedup",
                               by_pool[f"Pool({over})"], by_pool[f"Pool({c})"], can)
        judging.speedup(ctx, "The pool speeds up the pure-Python Monte Carlo too",
                        pure_pools[f"Pool({c})"], pure)
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


@experiment("L1.3", title="A thread pool for I/O-bound calls",
            lecture=LECTURE,
            shows="Waiting threads overlap: n waits take about the time of one, unless "
                  "the wait holds the GIL.",
            sizes={"tiny": dict(tasks=4, seconds=0.01), "quick": dict(tasks=8, seconds=0.05),
                   "full": dict(tasks=16, seconds=0.2)},
            timer="one starmap call handing every wait to the thread pool and collecting the "
                  "results (or the waits in a loop); the pool's threads are started before "
                  "timing.")
def io_thread_pool(ctx: Context) -> Result:
    n, secs = ctx.params["tasks"], ctx.params["seconds"]
    in_order = list(range(n))
    waits = {release: [(i, secs, release) for i in in_order] for release in (True, False)}
    backend = "multiprocessing.pool.ThreadPool"
    with contextlib.ExitStack() as stack:
        pool = thread_pools(stack, [n])[n]
        waiting = Cost(tasks=n, wait=1.0)
        serial, released, held, sleep = ctx.compare(
            ctx.plan("serial, io_wait", lambda: in_sequence(wait_kernel, waits[True]),
                     backend="serial", release_gil=True, check=in_order.__eq__, baseline=True,
                     cost=waiting),
            *[ctx.plan(f"ThreadPool, io_wait {gil_word(release)}",
                       functools.partial(pool.starmap, wait_kernel, waits[release]),
                       backend=backend, workers=n, release_gil=release, check=in_order.__eq__,
                       cost=waiting)
              for release in (True, False)],
            ctx.plan("ThreadPool, time.sleep",
                     functools.partial(pool.starmap, wait_sleep, [(i, secs) for i in in_order]),
                     backend=backend, workers=n, check=in_order.__eq__, cost=waiting))
        can = judging.overlap(ctx, "Threads overlap waits: n waits take about the time of one",
                              released, serial, n)
        judging.overlap(ctx, "time.sleep releases the GIL, so pure-Python waits overlap too",
                        sleep, serial, n)
        judging.no_speedup(ctx, "A wait that holds the GIL blocks every thread: no overlap",
                           held, serial, can)
    return ctx.result()


# ---------------------------------------------------------------- L1.4

def joblib_runner(parallel, label: str) -> Callable:
    return lambda fn, tasks: joblib_run(parallel, fn, tasks, label)


@experiment("L1.4", title="joblib: threads vs processes, n_jobs vs cores",
            lecture=LECTURE,
            shows="joblib threads help only a GIL-releasing kernel, processes help any "
                  "code; n_jobs far above the core count gains nothing.",
            sizes={
                "tiny": dict(tasks=10, samples=100_000, pure_samples=2_000, seed=7),
                "quick": dict(tasks=10, samples=20_000_000, pure_samples=500_000, seed=7),
                "full": dict(tasks=10, samples=100_000_000, pure_samples=1_000_000, seed=7),
            },
            timer="one joblib.Parallel call running every task and collecting the results "
                  "(or the tasks in a loop); every Parallel is entered and its threads or "
                  "processes started before timing, and kept between calls.")
def joblib_backends(ctx: Context) -> Result:
    spread_over_cores(ctx)
    p = ctx.params
    c, over = ctx.cores, ctx.oversubscribed
    n_jobs = ctx.worker_counts(oversubscribe=over)
    # Pools stay open until the lessons on them are judged: a lesson may
    # measure more rounds.
    with loky_workers(), contextlib.ExitStack() as stack:
        threads_by = {k: stack.enter_context(joblib_pool(k, "threads")) for k in n_jobs}
        serial, threads = kernel_comparison(ctx, "serial, released", kernel_tasks(p, True), {
            f"threads n_jobs={k}, released": ("joblib[threads]", k, True,
                                              joblib_runner(threads_by[k], "threads"))
            for k in n_jobs})
        # joblib keeps one pool of worker processes and resizes it when n_jobs
        # changes: alternating pool sizes would time the resizing. So the
        # oversubscribed pool is measured on its own, after the others.
        with joblib_pool(c, "processes") as procs:
            runners = {"threads": joblib_runner(threads_by[c], "threads"),
                       "processes": joblib_runner(procs, "processes")}
            serial_held, held = kernel_comparison(ctx, "serial, held", kernel_tasks(p, False), {
                f"{kind} n_jobs={c}, held": (f"joblib[{kind}]", c, False, runners[kind])
                for kind in ("threads", "processes")})
            pure, pure_runs = pure_comparison(ctx, {
                f"{prefer} n_jobs={c}": (f"joblib[{prefer}]", c, runners[prefer])
                for prefer in ("threads", "processes")})
            can_threads = judging.speedup(
                ctx, "joblib threads speed up a kernel that releases the GIL",
                threads[f"threads n_jobs={c}, released"], serial)
            judging.no_speedup(ctx, "joblib threads give nothing when the kernel holds the GIL",
                               held[f"threads n_jobs={c}, held"], serial_held, can_threads)
            can_procs = judging.speedup(ctx, "joblib processes speed up even a kernel that holds "
                                             "the GIL", held[f"processes n_jobs={c}, held"],
                                        serial_held)
            judging.oversubscribed(ctx, "n_jobs far above the core count gains nothing (threads)",
                                   threads[f"threads n_jobs={over}, released"],
                                   threads[f"threads n_jobs={c}, released"], can_threads)
            can_pure = judging.speedup(ctx, "Pure Python: joblib processes speed it up",
                                       pure_runs[f"processes n_jobs={c}"], pure)
            judging.no_speedup(ctx, "Pure Python: joblib threads do not",
                               pure_runs[f"threads n_jobs={c}"], pure, can_pure, needs_gil=True)
        with joblib_pool(over, "processes") as procs:
            over_held = ctx.compare(ctx.plan(
                f"processes n_jobs={over}, held",
                functools.partial(joblib_run, procs, hits, kernel_tasks(p, False), "processes"),
                backend="joblib[processes]", workers=over, release_gil=False,
                check=lambda got: got == serial_held.output, speedup_over=serial_held,
                cost=Cost(tasks=p["tasks"])))[0]
            # Extra rounds of the n_jobs=c comparison, should this lesson ask
            # for them, would time joblib resizing its pool back.
            judging.oversubscribed(ctx, "n_jobs far above the core count gains nothing "
                                        "(processes)", over_held,
                                   held[f"processes n_jobs={c}, held"], can_procs)
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
                   "quick": dict(m=400, n=400, p=100, chunks=40, seed=5),
                   "full": dict(m=1000, n=1000, p=100, chunks=100, seed=5)},
            timer="one call computing the whole matrix: the pool variants hand out the row "
                  "chunks and concatenate the blocks they return, as the lab does; every pool "
                  "(Pool, ThreadPool, joblib's processes) is started before timing.")
def lab(ctx: Context) -> Result:
    p = ctx.params
    rng = np.random.default_rng(p["seed"])
    X, Y = rng.random((p["m"], p["p"])), rng.random((p["n"], p["p"]))
    check = judging.close_to(scipy_cdist(X, Y))
    blocks = np.array_split(X, ctx.task_count(p["chunks"]))
    pure = [(xs, Y) for xs in blocks]
    kernel = {release: [(xs, Y, release) for xs in blocks] for release in (True, False)}
    c = ctx.cores
    # Pools stay open until the lessons are judged: a lesson may measure more rounds.
    with loky_workers(), contextlib.ExitStack() as stack:
        procs = started_pools(stack, ctx.mp, [c])[c]
        threads = thread_pools(stack, [c])[c]
        jl = stack.enter_context(joblib_pool(c, "processes"))
        chunked = Cost(tasks=len(blocks))
        serial, by_pool, by_threads, by_joblib = ctx.compare(
            ctx.plan("serial, pure loop", lambda: distance.cdist_loop(X, Y), backend="serial",
                     check=check, baseline=True),
            ctx.plan("Pool.starmap, pure loop",
                     lambda: np.concatenate(procs.starmap(distance.cdist_loop, pure)),
                     backend="multiprocessing.Pool", workers=c, check=check, cost=chunked),
            ctx.plan("ThreadPool.starmap, pure loop",
                     lambda: np.concatenate(threads.starmap(distance.cdist_loop, pure)),
                     backend="multiprocessing.pool.ThreadPool", workers=c, check=check,
                     cost=chunked),
            ctx.plan("joblib processes, pure loop",
                     lambda: np.concatenate(joblib_run(jl, distance.cdist_loop, pure, "lab")),
                     backend="joblib[processes]", workers=c, check=check, cost=chunked))
        out = touched_matrix(len(X), len(Y))
        one_call = ctx.measure("serial, parlab.cdist released",
                               functools.partial(parlab.cdist, X, Y, out=out),
                               backend="serial", release_gil=True, check=check,
                               cost=Cost(compiled=True))
        ctx.compare(*[ctx.plan(f"ThreadPool.starmap, parlab.cdist {gil_word(release)}",
                               lambda release=release: np.concatenate(
                                   threads.starmap(kernel_block, kernel[release])),
                               backend="multiprocessing.pool.ThreadPool", workers=c,
                               release_gil=release, check=check,
                               cost=Cost(tasks=len(blocks), compiled=True))
                      for release in (True, False)])
        can = judging.speedup(ctx, "Processes speed up the pure loop (Pool.starmap)", by_pool,
                              serial)
        judging.speedup(ctx, "Processes speed up the pure loop (joblib processes)", by_joblib,
                        serial)
        # Without a GIL the threads do run at once, but every step of the loop
        # calls NumPy on rows of a few hundred bytes, and each call writes to
        # state all threads share (the reference counts of the arrays the rows
        # are views of, and whatever np.sum touches inside): on free-threaded
        # 3.13 two threads of np.sum alone, on rows of their own, ran at 0.9x of one.
        # Processes share none of it.
        judging.no_speedup(ctx, "Threads don't: the pure loop holds the GIL", by_threads, serial,
                           can, needs_gil=True, without_gil=judging.WithoutGil(
                               "each tiny NumPy call writes to objects all threads share, so "
                               "threads gain less than processes",
                               judging.slower, (by_threads, by_pool, judging.HELD_BACK)))
        # As measured now: the lessons above may have measured more rounds.
        best = min(map(ctx.current, (by_pool, by_threads, by_joblib)), key=lambda v: v.seconds)
        judging.faster(ctx, "One compiled kernel call beats every parallel version of the loop "
                            "by far", one_call, best)
    return ctx.result()
