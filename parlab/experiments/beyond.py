"""Beyond the lectures (L5.1-L5.3): the lectures' lessons on a Dask cluster.

Each experiment starts a ``distributed.LocalCluster`` of its own, or, when
``PARLAB_SCHEDULER`` holds a scheduler's address (``python -m parlab
reproduce --scheduler tcp://HOST:PORT`` sets it), runs on that cluster.
"""
from __future__ import annotations

import functools
import os
import re

import numpy as np

import parlab
from parlab.experiments import judging
from parlab.experiments.framework import Context, Cost, Result, experiment
from parlab.experiments.runners import touched_matrix
from parlab.workloads import cluster, montecarlo

LECTURE = "005_beyond_the_lectures"
SCHEDULER_ENV = "PARLAB_SCHEDULER"
# Seconds to wait for a scheduler named on the command line.
CHECK_TIMEOUT_S = 10
# A LocalCluster has as many workers as cores, at least 2 and at most 4, each with
# as many threads: enough for one worker's threads and for the workers to compare.
LOCAL_WORKERS = (2, 4)
THREADS_RELEASED = "Threads in one worker speed up the kernel that releases the GIL"
THREADS_HELD = "Threads in one worker do not speed up the kernel holding the GIL"
THREADS_PURE = "Threads in one worker do not speed up pure Python"
JOBS = ("cdist, GIL released", "cdist, GIL held", "pure-Python Monte Carlo")
WORKERS_ALL = [f"Worker processes speed up {job}" for job in JOBS]


def scheduler_address() -> str | None:
    """The cluster to use: ``$PARLAB_SCHEDULER``, or None for a LocalCluster."""
    return os.environ.get(SCHEDULER_ENV) or None


def check_scheduler(address: str) -> None:
    """Raise ValueError for an address that is not ``scheme://host:port``, OSError
    (TimeoutError) when no scheduler answers there with a worker."""
    if not re.fullmatch(r"[a-z]+://[^/\s]+:\d+", address):
        raise ValueError("expected a scheduler address like tcp://HOST:PORT")
    with cluster.connect(address, timeout=CHECK_TIMEOUT_S) as client:
        if not client.scheduler_info(n_workers=-1)["workers"]:
            raise OSError("the scheduler has no workers")


def _connect(ctx: Context):
    low, high = LOCAL_WORKERS
    k = max(low, min(ctx.cores, high))
    return cluster.connect(scheduler_address(), workers=k, threads_per_worker=k)


def _where(client) -> str:
    threads = cluster.worker_threads(client)
    return (f"{len(threads)} workers ({', '.join(map(str, threads.values()))} threads) at "
            f"{client.scheduler.address}")


# ---------------------------------------------------------------- L5.1

@experiment("L5.1", title="A Dask cluster: threads per worker vs worker processes",
            lecture=LECTURE,
            shows="Threads inside one Dask worker share its GIL: they speed up a kernel that "
                  "releases it and nothing else; separate worker processes speed up all "
                  "work, released, held or pure Python, so threads_per_worker follows the "
                  "lectures' rule.",
            sizes={"tiny": dict(rows=300, samples=30_000, per_chain=2),
                   "quick": dict(rows=2_500, samples=600_000, per_chain=3),
                   "full": dict(rows=3_000, samples=1_500_000, per_chain=5)},
            timer="submitting the chains of jobs to their workers and gathering the results; "
                  "the cluster is started, the input scattered to every worker and each job "
                  "run once on every thread used, before timing.")
def threads_vs_workers(ctx: Context) -> Result:
    rows, per_chain = ctx.params["rows"], ctx.params["per_chain"]
    X = np.random.default_rng(0).random((rows, 16))
    total = float(parlab.cdist(X, X).sum())
    pure_hits = montecarlo.count_hits(ctx.params["samples"], 1)
    with _connect(ctx) as client:
        threads = cluster.worker_threads(client)
        ctx.extras["cluster"] = _where(client)
        workers = list(threads)
        first = max(workers, key=threads.get)
        k = min(len(workers), threads[first])
        if k < 2:
            for text in (THREADS_RELEASED, THREADS_HELD, THREADS_PURE, *WORKERS_ALL):
                judging.skipped(ctx, text, "needs 2 workers, one of them with 2 threads; "
                                           f"the cluster has {threads}")
            return ctx.result()
        # Every worker gets its own copy of the input before anything is timed.
        (shared,) = client.scatter([X], broadcast=True, hash=False)
        others = [w for w in workers if w != first][:k - 1]
        jobs = [(cluster.cdist_total, (shared, shared, True), True, total),
                (cluster.cdist_total, (shared, shared, False), False, total),
                (montecarlo.count_hits, (ctx.params["samples"], 1), False, pure_hits)]
        placement = [first] * k + others
        for job, args, _, _ in jobs:  # workers import the jobs and start their threads
            cluster.run_placed(client, job, args, placement, 1)
        measured = []
        for name, (job, args, released, want) in zip(JOBS, jobs):
            def plan(how, placement, chain, workers_used, processes=False, **kw):
                def right(out, want=want, n=len(placement) * chain):
                    return sum(out, []) == [want] * n

                return ctx.plan(f"{name}: {how}", functools.partial(
                    cluster.run_placed, client, job, args, placement, chain),
                    backend="dask.distributed", workers=workers_used, release_gil=released,
                    check=right, cost=Cost(processes=processes), **kw)

            measured.append(ctx.compare(
                plan("1 worker, 1 thread", [first], k * per_chain, 1),
                plan(f"1 worker x {k} threads", [first] * k, per_chain, k),
                plan(f"{k} workers x 1 thread", [first] + others, per_chain, k, processes=True),
                versus_first=True))
        # On the open cluster: a lesson may measure more rounds.
        judge(ctx, measured)
    return ctx.result()


def judge(ctx: Context, measured: list) -> None:
    """L5.1's lessons from the (serial, threads, workers) variants of each of :data:`JOBS`."""
    released, held, pure = measured
    can = judging.speedup(ctx, THREADS_RELEASED, released[1], released[0])
    judging.no_speedup(ctx, THREADS_HELD, held[1], held[0], can)
    judging.no_speedup(ctx, THREADS_PURE, pure[1], pure[0], can, needs_gil=True)
    for text, (serial, _, workers) in zip(WORKERS_ALL, measured):
        judging.speedup(ctx, text, workers, serial)


# ---------------------------------------------------------------- L5.2

@experiment("L5.2", title="A distance matrix as a dask.array of parlab.cdist blocks",
            lecture=LECTURE,
            shows="parlab.dask.cdist splits the matrix into blocks that workers compute with "
                  "parlab's kernel: the result equals one parlab.cdist call bit for bit, and a "
                  "reduction such as each row's nearest distance never gathers the matrix.",
            sizes={"tiny": dict(rows=(600, 400), block=150),
                   "quick": dict(rows=(2_000, 2_000), block=1_000),
                   "full": dict(rows=(8_000, 6_000), block=2_000)},
            timer="computing the graph on the cluster and gathering what it returns (the "
                  "matrix, or its row minima), or one parlab.cdist call into a matrix touched "
                  "before timing; the cluster is started and its workers have imported "
                  "parlab.dask before timing.")
def dask_array(ctx: Context) -> Result:
    import parlab.dask
    from distributed import get_task_stream

    m_a, m_b = ctx.params["rows"]
    rng = np.random.default_rng(2)
    XA, XB = rng.random((m_a, 16)), rng.random((m_b, 16))
    D = parlab.dask.cdist(XA, XB, chunks=ctx.params["block"])
    nearest = D.min(axis=1)
    with _connect(ctx) as client:
        ctx.extras["cluster"] = _where(client)
        cluster.import_on_workers(client, "parlab.dask")
        # The inputs are small and travel inside the graph; the matrix is what is large.
        one = ctx.plan("one parlab.cdist call",
                       functools.partial(parlab.cdist, XA, XB, out=touched_matrix(m_a, m_b)),
                       backend="parlab", baseline=True)
        n_workers = len(cluster.worker_threads(client))
        with get_task_stream(client) as stream:
            _, whole, mins = ctx.compare(
                one,
                ctx.plan(f"parlab.dask.cdist, {D.npartitions} blocks, gathered",
                         lambda: client.compute(D).result(), backend="dask.distributed",
                         workers=n_workers, check=lambda out: np.array_equal(out, one.output),
                         expected="one call's matrix, bit for bit"),
                ctx.plan("nearest distance per row, on the workers",
                         lambda: client.compute(nearest).result(), backend="dask.distributed",
                         workers=n_workers,
                         check=lambda out: np.array_equal(out, one.output.min(axis=1)),
                         expected="one call's row minima, bit for bit"))
        ran_on = {t["worker"] for t in stream.data if "parlab-cdist" in str(t["key"])}
        known = set(cluster.worker_threads(client))
    judging.fact(ctx, "The dask.array equals one parlab.cdist call, bit for bit", whole.correct,
                 f"{D.npartitions} blocks of up to {ctx.params['block']} x "
                 f"{ctx.params['block']}; equal: {whole.correct}")
    judging.fact(ctx, "A reduction over the blocks equals the one-call result without "
                      "gathering the matrix", mins.correct,
                 f"{D.nbytes / 2**20:.0f} MB matrix, {nearest.nbytes / 2**10:.0f} KB gathered")
    judging.fact(ctx, "The cluster's workers computed the blocks, more than one of them",
                 bool(ran_on) and ran_on <= known and len(ran_on) >= min(2, len(known)),
                 f"blocks ran on {len(ran_on & known)} of the {len(known)} workers"
                 + (f" and on {len(ran_on - known)} others" if ran_on - known else ""))
    return ctx.result()


# ---------------------------------------------------------------- L5.3

@experiment("L5.3", title="Reproducible Monte Carlo on a cluster, and lecture 001's repeated "
                          "random numbers",
            lecture=LECTURE,
            shows="With a counter-based stream every chunk draws its own samples of one "
                  "sequence: any chunking on any number of workers counts exactly the serial "
                  "hits. Lecture 001's np.random in forked pool workers draws the same numbers "
                  "in every worker.",
            sizes={"tiny": dict(samples=2_000_000, chunks=[1_000_000, 300_001], draws=1_000),
                   "quick": dict(samples=100_000_000, chunks=[50_000_000, 9_999_991],
                                 draws=100_000),
                   "full": dict(samples=4_000_000_000, chunks=[500_000_000, 49_999_991],
                                draws=1_000_000)},
            timer="counting every sample, in one call or as chunks on the cluster's workers "
                  "gathered and summed; the cluster is started and its workers have imported "
                  "parlab.dask before timing.")
def reproducible_monte_carlo(ctx: Context) -> Result:
    import dask

    import parlab.dask

    n, seed = ctx.params["samples"], 2024
    expected = "the serial count, exactly"

    def exact(hits: int) -> bool:
        return hits == serial.output  # set once every plan of the comparison has run

    serial = ctx.plan("parlab.count_hits, one call", functools.partial(
        parlab.count_hits, n, seed=seed), backend="parlab", baseline=True,
        check=judging.hits_plausible(n), expected="a count within 6 sigma of n*pi/4")
    with _connect(ctx) as client:
        ctx.extras["cluster"] = _where(client)
        cluster.import_on_workers(client, "parlab.dask")
        workers = list(cluster.worker_threads(client))
        plans = [serial]
        for chunk in ctx.params["chunks"]:
            plans.append(ctx.plan(
                f"parlab.dask.count_hits, chunks of {chunk:,}, all {len(workers)} workers",
                functools.partial(parlab.dask.count_hits, n, seed=seed, chunk=chunk,
                                  client=client),
                backend="dask.distributed", workers=len(workers), check=exact,
                expected=expected))

        def on_one_worker():
            with dask.annotate(workers=workers[:1], allow_other_workers=False):
                return parlab.dask.count_hits(n, seed=seed, chunk=ctx.params["chunks"][-1],
                                              client=client)

        plans.append(ctx.plan(f"parlab.dask.count_hits, chunks of {ctx.params['chunks'][-1]:,},"
                              " 1 worker", on_one_worker, backend="dask.distributed",
                              check=exact, expected=expected))
        measured = ctx.compare(*plans)
    judging.fact(ctx, "Every chunking on any number of workers counts exactly the serial hits",
                 all(v.correct for v in measured),
                 ", ".join(f"{v.output:,}" for v in measured))
    _forked_random(ctx)
    return ctx.result()


def _forked_random(ctx: Context) -> None:
    method = cluster.pool_start_method(ctx.start_method)
    processes = max(2, ctx.cores)
    draws = cluster.global_draws(processes, ctx.params["draws"], start_method=method)
    repeats = cluster.duplicated_draws(draws)
    observed = (f"{processes} workers drew {ctx.params['draws']:,} points each; {repeats} of "
                f"them repeated another worker's draw exactly")
    if method == "fork":
        judging.fact(ctx, "Lecture 001's np.random in forked Pool workers: every worker draws "
                          "the same samples", repeats == processes - 1,
                     observed + " (a seeded stream per task, or a counter-based one like "
                                "parlab's, avoids it)")
    else:
        # Asked for, or a platform without fork (Windows).
        judging.fact(ctx, f"Lecture 001's np.random in {method} Pool workers (not forked): each "
                          "worker seeds itself, so none repeats another's samples",
                     repeats == 0, observed)
