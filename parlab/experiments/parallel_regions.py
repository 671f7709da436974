"""Lecture 003, last example (L3.6): a parallel region too small to pay for itself."""
from __future__ import annotations

import functools

import numpy as np

import parlab
from parlab.experiments import judging
from parlab.experiments.framework import Context, Cost, Result, experiment
from parlab.experiments.runners import touched_matrix
from parlab.workloads import numba_pi, regions

LECTURE = "003_34ca9651d8197462.txt"
OUTER_FASTER = "prange on the outer loop speeds the operation up: one parallel region"
INNER_SLOWER = ("prange on the inner loop is slower than on the outer: a parallel region per "
                "innermost row costs more than the row's work")
ARGUMENT_ONLY = ("parallel=True passed as a function argument (the lecture's squareIt) leaves "
                 "the loop on one thread")
SMALL_SLOWER = "On the smallest input two threads are slower than one: starting them costs more"
LARGE_FASTER = "On the largest input two threads are faster than one"
CROSSOVER = "Above a crossover size two threads win at every size"


@experiment("L3.6", title="Where the parallel region opens: prange on the outer, middle or "
                          "inner loop",
            lecture=LECTURE,
            shows="A parallel region costs thread wake-ups and a join: on the outer loop of a "
                  "3-D array there is one, on the inner loop one per row, each too small to pay "
                  "for itself; the same holds for parlab's n_threads on small inputs, with a "
                  "crossover size above which two threads win.",
            # n_threads never starts more threads than a call has blocks of 64
            # rows: the smallest input has two, so two threads really start.
            sizes={"tiny": dict(shape=(8, 60, 40), rows=[128, 512, 2048], batch_s=0.002),
                   "quick": dict(shape=(40, 300, 50), rows=[128, 256, 512, 1024, 2048],
                                 batch_s=0.02),
                   "full": dict(shape=(200, 1000, 100),
                                rows=[128, 256, 512, 1024, 2048, 4096], batch_s=0.1)},
            timer="numba: one call of the in-place kernel on its own array, compiled and its "
                  "threads started before timing (opening parallel regions is the lesson). "
                  "cdist: a batch of calls, each starting and joining its n_threads (also the "
                  "lesson), into an output of its own allocated and touched before timing.")
def parallel_regions(ctx: Context) -> Result:
    _numba_loops(ctx)
    _thread_crossover(ctx)
    return ctx.result(figure="regions_figure")


def _numba_loops(ctx: Context) -> None:
    kernels = regions.kernels()
    if kernels is None:
        for text in (OUTER_FASTER, INNER_SLOWER, ARGUMENT_ONLY):
            judging.skipped(ctx, text, numba_pi.why_missing())
        return
    shape = ctx.params["shape"]
    x = np.random.default_rng(0).uniform(-3, 3, shape)
    # The kernels work in place; each variant repeats on its own copy, and
    # its check compares the first pass with NumPy's.
    want = regions.math_op_reference(x)

    def plan(name, kernel, workers, loop=None, **kw):
        work = x.copy()
        kernel(work)
        ok = bool(np.allclose(work, want, rtol=1e-13, atol=1e-15))
        opened = regions.regions_opened(shape, loop) if loop else 0
        label = f"{name} ({opened} region{'s' * (opened != 1)})" if loop else name
        # An innermost row is less work than opening a region for it.
        cost = Cost(tasks=shape[0] * shape[1], tiny=True, starts=opened)
        return ctx.plan(label, functools.partial(kernel, work), backend="numba",
                        workers=workers, check=lambda _: ok, cost=cost, **kw)

    serial, outer, middle, inner, argument_only = ctx.compare(
        plan("njit, one thread", kernels.serial, 1, baseline=True),
        plan("prange outer loop", kernels.outer, ctx.cores, "outer"),
        plan("prange middle loop", kernels.middle, ctx.cores, "middle"),
        plan("prange inner loop", kernels.inner, ctx.cores, "inner"),
        plan("njit, parallel=True as an argument", kernels.argument_only, 1))
    can = judging.speedup(ctx, OUTER_FASTER, outer, serial)
    judging.slower(ctx, INNER_SLOWER, inner, outer, judging.REGION_COST, paired=can)
    judging.no_speedup(ctx, ARGUMENT_ONLY, argument_only, serial, can)


def _thread_crossover(ctx: Context) -> None:
    sizes = ctx.params["rows"]
    one, two = [], []
    for rows in sizes:
        X = regions.cdist_inputs(rows)
        want = parlab.cdist(X, X)
        calls = {k: functools.partial(parlab.cdist, X, X, out=touched_matrix(rows), n_threads=k)
                 for k in (1, 2)}
        loops = regions.loops_for(calls[1], ctx.params["batch_s"])

        a, b = ctx.compare(*[
            ctx.plan(f"cdist {rows} rows x{loops} calls, n_threads={k}",
                     regions.batch(calls[k], loops), backend="parlab", workers=k,
                     release_gil=True, check=lambda D: np.array_equal(D, want),
                     cost=Cost(ops=loops * X.size * rows, compiled=True, tasks=loops * k,
                               starts=loops * k if k > 1 else 0))
            for k in (1, 2)], versus_first=True)
        one.append(a)
        two.append(b)
    crossover = regions.Crossover(sizes, [v.seconds for v in one], [v.seconds for v in two])
    ctx.extras["crossover"] = crossover
    found = crossover.size()
    ctx.extras["crossover_rows"] = found
    large = judging.speedup(ctx, LARGE_FASTER, two[-1], one[-1], 2)
    judging.slower(ctx, SMALL_SLOWER, two[0], one[0], 1.0, paired=large)
    ratios = ", ".join(f"{rows}: {r:.2f}x" for rows, r in zip(sizes, crossover.ratios()))
    if large.verdict == "skipped":
        judging.skipped(ctx, CROSSOVER, large.observed)
        return
    # A crossover counts only above a size where two threads clearly win.
    judging.timing_fact(ctx, CROSSOVER, found is not None and large.holds,
                   (f"two threads win from {found} rows on" if found is not None
                    else "two threads never win here")
                   + f" (time with two threads / with one, by rows: {ratios})", *one, *two)
