"""Lecture 004: the GIL, NumPy's own threads, and processes x threads."""
from __future__ import annotations

import functools
import itertools

import numpy as np
from threadpoolctl import threadpool_limits

from parlab.experiments._base import Context, Result, experiment
from parlab.experiments._fair import no_speedup_lesson, oversubscribed_lesson, speedup_lesson
from parlab.experiments._jobs import measure_job, variant_name
from parlab.reference import tasks

LECTURE = "004_abaece415b4470b8.txt"
BEST_AT_CORES = "The best BLAS thread count is the core count"
OVERSUBSCRIBED = "More BLAS threads than cores give no further speedup"


@experiment("L4.1", title="The GIL: threads don't speed up pure-Python computing, processes do",
            lecture=LECTURE,
            shows="Compute-heavy pure-Python threads get no speedup; processes do, each "
                  "with its own GIL; a kernel that releases the GIL speeds up in threads.",
            sizes={"tiny": dict(task_seconds=0.01),
                   "quick": dict(task_seconds=0.1),
                   "full": dict(task_seconds=1.0)})
def gil(ctx: Context) -> Result:
    workers = ctx.cores  # one task per core
    jobs = tasks.lecture_jobs(workers, ctx.params["task_seconds"])
    py, released, held = jobs["long_comp"], jobs["cpu_work released"], jobs["cpu_work held"]

    def measure(job, how, runner, backend, **kw):
        # Only the returned values are checked: the shared dict is a lecture 002 lesson.
        measure_job(ctx, job, how, runner, backend=backend, shares_memory=False,
                    workers=1 if backend == "serial" else workers, **kw)
        return variant_name(job, how)

    py_serial = measure(py, "serial", tasks.run_serial, "serial", baseline=True)
    py_threads = measure(py, "threads", tasks.run_threads, "threading.Thread")
    with ctx.mp.Pool(workers) as pool:
        tasks.warm_up(pool, workers)
        py_procs = measure(py, "processes", functools.partial(tasks.run_apply_async, pool),
                           "multiprocessing.Pool")
    c_serial = measure(released, "serial", tasks.run_serial, "serial")
    c_threads = measure(released, "threads", tasks.run_threads, "threading.Thread", trace=True)
    held_threads = measure(held, "threads", tasks.run_threads, "threading.Thread", trace=True)

    no_speedup_lesson(ctx, "Pure-Python computing threads get no speedup: one GIL, one thread "
                           "at a time", py_threads, py_serial)
    speedup_lesson(ctx, "Processes, each with its own GIL, speed the same code up",
                   py_procs, py_serial, workers)
    speedup_lesson(ctx, "cpu_work with the GIL released speeds up in threads",
                   c_threads, c_serial, workers)
    no_speedup_lesson(ctx, "cpu_work holding the GIL does not", held_threads, c_serial)
    return ctx.result()


def _blas_thread_counts(cores: int) -> list[int]:
    """1, 2, ..., cores on small machines; powers of two and the core count on big ones."""
    if cores <= 8:
        return list(range(1, cores + 1))
    return sorted({2 ** k for k in range(cores.bit_length()) if 2 ** k <= cores} | {cores})


@experiment("L4.2", title="NumPy's own threads: a matrix product with 1, 2, ... BLAS threads",
            lecture=LECTURE,
            shows="NumPy's BLAS runs one call on several threads of its own; it is fastest "
                  "with as many threads as cores, and more threads than cores don't help.",
            sizes={"tiny": dict(n=200), "quick": dict(n=1_200), "full": dict(n=3_000)})
def blas_threads(ctx: Context) -> Result:
    n = ctx.params["n"]
    a, b = tasks.random_pair(0, n)
    x = np.random.default_rng(1).standard_normal(n)
    want = a @ (b @ x)  # matrix-vector products only: a cheap, independent check

    def product_right(c) -> bool:
        return np.allclose(c @ x, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())

    def product(threads: int):
        with threadpool_limits(limits=threads, user_api="blas"):
            return a @ b

    counts = _blas_thread_counts(ctx.cores) + [2 * ctx.cores]  # the last oversubscribes
    names = {k: f"a @ b, {k} BLAS thread{'s' * (k > 1)}" for k in counts}
    for k in counts:
        ctx.measure(names[k], functools.partial(product, k),
                    backend="threadpoolctl.threadpool_limits", workers=k,
                    check=product_right, baseline=k == 1)
    speedup_lesson(ctx, "More BLAS threads make the one call faster, up to the cores",
                   names[ctx.cores], names[1], ctx.cores)
    best = min(counts, key=lambda k: ctx.seconds(names[k]))
    oversubscribed_lesson(ctx, OVERSUBSCRIBED, names[2 * ctx.cores], names[ctx.cores])
    if ctx.cores < 2:
        ctx.lesson(BEST_AT_CORES, False, "only 1 core: no thread count to compare it with")
    else:
        near = ctx.seconds(names[ctx.cores]) <= 1.1 * ctx.seconds(names[best])
        ctx.lesson(BEST_AT_CORES, near,
                   f"fastest with {best} of {counts}; {ctx.cores} threads within 10% of it: {near}")
    return ctx.result()


def _grid(cores: int, counts: list[int]) -> list[tuple[int, int]]:
    """(processes, threads) pairs from ``counts`` that fit the cores, and two that
    oversubscribe them."""
    fits = [(p, t) for p, t in itertools.product(counts, counts) if p * t <= cores]
    return fits + sorted({(cores, 2), (2, cores)} - set(fits))


@experiment("L4.3", title="Processes x threads per process on a batch of matrix products",
            lecture=LECTURE,
            shows="Independent jobs can use the cores through processes, BLAS threads, or "
                  "both; the fastest combination keeps processes x threads within the core "
                  "count, and oversubscribing them costs time.",
            sizes={"tiny": dict(jobs=4, n=100), "quick": dict(jobs=8, n=700),
                   "full": dict(jobs=24, n=1_500)})
def processes_x_threads(ctx: Context) -> Result:
    jobs, n = ctx.params["jobs"], ctx.params["n"]
    seeds = list(range(jobs))
    want = [tasks.matmul_sum_reference(s, n) for s in seeds]

    def sums_right(out) -> bool:
        return np.allclose(out, want, rtol=1e-9, atol=1e-9 * n * n)

    grid = _grid(ctx.cores, ctx.worker_counts())
    names = {}
    for procs in sorted({p for p, _ in grid}):
        with ctx.mp.Pool(procs) as pool:
            tasks.warm_up(pool, procs)
            for threads in sorted(t for p, t in grid if p == procs):
                job = functools.partial(tasks.matmul_job, n=n, threads=threads)
                names[procs, threads] = f"{procs} processes x {threads} threads"
                ctx.measure(names[procs, threads],
                            functools.partial(pool.map, job, seeds, chunksize=1),
                            backend="multiprocessing.Pool", workers=procs * threads,
                            check=sums_right, baseline=(procs, threads) == (1, 1))

    def fits(pair):
        return pair[0] * pair[1] <= ctx.cores

    best = min(names, key=lambda pair: ctx.seconds(names[pair]))
    best_fit = min(filter(fits, names), key=lambda pair: ctx.seconds(names[pair]))
    over = min(itertools.filterfalse(fits, names), key=lambda pair: ctx.seconds(names[pair]))
    ctx.lesson("The fastest combination keeps processes x threads within the cores",
               fits(best), f"fastest: {names[best]} on {ctx.cores} cores")
    slower = ctx.seconds(names[over]) / ctx.seconds(names[best_fit])
    ctx.lesson("Oversubscribing (processes x threads > cores) is slower than the best "
               "combination that fits", slower > 1.05,
               f"best oversubscribed, {names[over]}: {slower:.2f}x the time of {names[best_fit]}")
    speedup_lesson(ctx, "Using every core, by processes or threads, beats one process with "
                        "one thread", names[best_fit], names[1, 1], ctx.cores)
    return ctx.result()
