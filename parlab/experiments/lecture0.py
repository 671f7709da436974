"""Lecture 000: the distance matrix, from threads per cell to chunked kernels.

The lecture's own code (pure Python, NumPy rows) lives in
:mod:`parlab.workloads.distance`; here it is measured next to ``parlab.cdist``
with the GIL released and held. Every variant builds the same matrix.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from scipy.spatial.distance import cdist as scipy_cdist

import parlab
from parlab.experiments import judging, probe
from parlab.experiments.framework import Context, Cost, Result, Variant, experiment
from parlab.experiments.runners import (
    attached_matrix, blocks_in_joblib_threads, blocks_in_sequence, blocks_in_threads,
    read_shared_matrix, row_bounds, run_processes, shared_matrix, start_and_join,
    touched_matrix, warm_up,
)
from parlab.workloads import distance
from parlab.presentation import gil_word

LECTURE = "000_bbe763c222011708.txt"


# ---------------------------------------------------------------- shared pieces

def dataset(p: dict[str, Any]) -> tuple[list[list[float]], np.ndarray, np.ndarray]:
    """The points as lists (for pure Python) and as an array, and SciPy's matrix."""
    X = distance.random_dataset(p["n"], p["dim"])
    A = np.array(X)
    return X, A, scipy_cdist(A, A)


def kernel_rows(A: np.ndarray, D: np.ndarray, start: int, stop: int,
                release_gil: bool) -> None:
    """Write rows ``start:stop`` of the distance matrix of ``A`` into ``D`` with parlab."""
    parlab.cdist(A[start:stop], A, out=D[start:stop], release_gil=release_gil)


def scipy_rows(A: np.ndarray, D: np.ndarray, start: int, stop: int) -> None:
    """The lecture's block task: rows ``start:stop`` through SciPy's cdist."""
    D[start:stop] = scipy_cdist(A[start:stop], A)


def released_control(ctx: Context, seconds: float, threads: int) -> tuple[Variant, Variant]:
    """The capacity probe (:mod:`~parlab.experiments.probe`) as variants of
    their own: ``threads`` slices of released ``parlab.cpu_work`` lasting
    ``seconds`` in all, serially and in threads: proof that the machine could
    run threads in parallel while a "no speedup" lesson beside it was measured."""
    calls = probe.slices(threads, seconds / threads)
    want = [c() for c in calls]
    serial, together = probe.serial_and_threads(calls)
    return ctx.compare(
        ctx.plan("control: cpu_work released, serial", serial,
                 backend="serial", release_gil=True, check=want.__eq__),
        ctx.plan(f"control: cpu_work released, {threads} threads", together,
                 backend="threading.Thread", workers=threads,
                 release_gil=True, check=want.__eq__), versus_first=True)


# ---------------------------------------------------------------- L0.1

@experiment("L0.1", title="Pure-Python distance matrix, in any order",
            lecture=LECTURE,
            shows="Cells are independent: any fill order gives the same matrix, "
                  "so the work is embarrassingly parallel.",
            sizes={"tiny": dict(n=30, dim=4), "quick": dict(n=250, dim=50),
                   "full": dict(n=700, dim=100)},
            timer="building the whole matrix once: the pure-Python loop makes its list of lists "
                  "as the lecture does; SciPy and parlab write into a matrix allocated and "
                  "touched before timing.")
def pure_python_matrix(ctx: Context) -> Result:
    X, A, ref = dataset(ctx.params)
    ordered = ctx.measure("pure Python, row by row", lambda: distance.distance_matrix(X),
                          backend="serial", check=judging.close_to(ref), baseline=True)
    shuffled = ctx.measure("pure Python, shuffled order",
                           lambda: distance.distance_matrix(X, seed=1), backend="serial",
                           check=ordered.output.__eq__, expected="equals row by row")
    scipy = ctx.measure("scipy.spatial.distance.cdist",
                        functools.partial(scipy_cdist, A, A, out=touched_matrix(len(A))),
                        backend="scipy", check=judging.close_to(np.array(ordered.output)),
                        cost=Cost(compiled=True))
    kernels = [ctx.measure(f"parlab.cdist, {gil_word(release)}",
                           functools.partial(parlab.cdist, A, A, out=touched_matrix(len(A)),
                                             release_gil=release),
                           backend="serial", release_gil=release, check=judging.close_to(ref),
                           cost=Cost(compiled=True))
               for release in (True, False)]
    n, same = ctx.params["n"], shuffled.output == ordered.output
    judging.fact(ctx, "Filling the cells in a shuffled order gives exactly the same matrix",
                 same, f"{n}x{n} cells, shuffled == row by row: {same}")
    slowest = max([scipy, kernels[0]], key=lambda v: v.seconds)
    judging.faster(ctx, "A compiled kernel is far faster than the pure-Python loop",
                   slowest, ordered)
    return ctx.result()


# ---------------------------------------------------------------- L0.2

def kernel_cell(A: np.ndarray, D: np.ndarray, i: int, j: int, release_gil: bool) -> None:
    """Thread task: one cell of the matrix through parlab."""
    parlab.cdist(A[i:i + 1], A[j:j + 1], out=D[i:i + 1, j:j + 1], release_gil=release_gil)


def thread_per_cell(X: list[list[float]]) -> list[list[float]]:
    """The lecture's matrix with one thread for every cell (n * n threads)."""
    n = len(X)
    D = distance.zeros(n, n)
    start_and_join(distance.fill_cell, ((D, X, i, j) for i in range(n) for j in range(n)))
    return D


def kernel_thread_per_cell(A: np.ndarray, D: np.ndarray, release: bool) -> np.ndarray:
    n = len(A)
    start_and_join(kernel_cell, ((A, D, i, j, release) for i in range(n) for j in range(n)))
    return D


@experiment("L0.2", title="One thread per cell",
            lecture=LECTURE,
            shows="Starting n*n threads costs far more than the cells' work: "
                  "several times slower than the serial loop.",
            sizes={"tiny": dict(n=8, dim=4), "quick": dict(n=40, dim=100),
                   "full": dict(n=150, dim=100)},
            timer="building the whole matrix once, including starting and joining one thread "
                  "per cell: their start-up is the lesson. The pure-Python variants make their "
                  "list of lists inside; parlab's fill a matrix touched before timing.")
def thread_per_cell_experiment(ctx: Context) -> Result:
    X, A, ref = dataset(ctx.params)
    n = len(X)
    ops = n * n * ctx.params["dim"]  # a cell's work: less than starting its thread
    serial, cells = ctx.compare(
        ctx.plan("serial, pure Python", lambda: distance.distance_matrix(X),
                 backend="serial", check=judging.close_to(ref), baseline=True,
                 cost=Cost(ops=ops)),
        ctx.plan("thread per cell, pure Python", lambda: thread_per_cell(X),
                 backend="threading.Thread", workers=n * n, check=judging.close_to(ref),
                 cost=Cost(ops=ops)))
    kernel = ctx.compare(*[
        ctx.plan(f"thread per cell, parlab.cdist {gil_word(release)}",
                 functools.partial(kernel_thread_per_cell, A, touched_matrix(n), release),
                 backend="threading.Thread", workers=n * n, release_gil=release,
                 check=judging.close_to(ref), cost=Cost(ops=ops, compiled=True))
        for release in (True, False)])
    judging.slower(ctx, f"One thread per cell ({n * n} threads) is several times slower than "
                        "the serial loop", cells, serial, 2)
    judging.slower(ctx, "A fast kernel per cell does not help: thread start-up dominates",
                   kernel[0], serial, 1)
    return ctx.result()


# ---------------------------------------------------------------- L0.3

def thread_per_row(X: list[list[float]]) -> list[list[float]]:
    """The lecture's matrix with one thread for every row (n threads)."""
    n = len(X)
    D = distance.zeros(n, n)
    start_and_join(distance.fill_rows, ((D, X, i, i + 1) for i in range(n)))
    return D


def pure_thread_per_block(X: list[list[float]], bounds: Iterable[tuple[int, int]]):
    D = distance.zeros(len(X), len(X))
    start_and_join(distance.fill_rows, ((D, X, a, b) for a, b in bounds))
    return D


@experiment("L0.3", title="One thread per row, pure Python",
            lecture=LECTURE,
            shows="Pure-Python threads take turns on the GIL: no speedup, "
                  "whether one thread per row or one per core.",
            sizes={"tiny": dict(n=20, dim=4), "quick": dict(n=250, dim=50),
                   "full": dict(n=500, dim=100)},
            timer="building the whole pure-Python matrix once (its list of lists made inside, "
                  "as the lecture does), including starting and joining the threads: a few "
                  "dozen microseconds each.")
def thread_per_row_experiment(ctx: Context) -> Result:
    X, _, ref = dataset(ctx.params)
    n = len(X)
    bounds = row_bounds(n, ctx.cores)
    serial, rows, blocks = ctx.compare(
        ctx.plan("serial, pure Python", lambda: distance.distance_matrix(X),
                 backend="serial", check=judging.close_to(ref), baseline=True),
        ctx.plan("thread per row, pure Python", lambda: thread_per_row(X),
                 backend="threading.Thread", workers=n, check=judging.close_to(ref)),
        ctx.plan("thread per core, pure Python", lambda: pure_thread_per_block(X, bounds),
                 backend="threading.Thread", workers=len(bounds), check=judging.close_to(ref)))
    control = released_control(ctx, serial.seconds, len(bounds))
    can = judging.speedup(ctx, "Control: the same machine runs threads in parallel when "
                               "the work releases the GIL", control[1], control[0])
    # Without a GIL the threads do run at once, but a row is a millisecond or
    # two of work: starting and ending its thread, while the threads already
    # started compete with the starting one for the cores, costs about as much.
    judging.no_speedup(ctx, "One thread per row gives no speedup (the GIL)", rows, serial, can,
                       needs_gil=True, without_gil=judging.WithoutGil(
                           "a thread per row costs more than it saves, against a thread per core",
                           judging.slower, (rows, blocks, judging.HELD_BACK)))
    judging.no_speedup(ctx, "Fewer, bigger threads do not help either: it is the GIL, "
                            "not the thread count", blocks, serial, can, needs_gil=True)
    return ctx.result()


# ---------------------------------------------------------------- L0.4

def fill_shared(name: str, n: int, X: Any, start: int, stop: int,
                release_gil: bool | None) -> None:
    """Process task: attach to the shared ``n x n`` matrix by name, write its rows.

    ``release_gil=None`` computes the rows in pure Python from a list of lists;
    otherwise ``X`` is an array and parlab computes them straight into the
    shared buffer.
    """
    with attached_matrix(name, n) as D:
        block = D[start:stop]
        if release_gil is None:
            block[:] = distance.distance_rows(X, start, stop)
        else:
            parlab.cdist(X[start:stop], X, out=block, release_gil=release_gil)
        # The view must go before the buffer is closed, or it is still exported.
        del block


def processes_into_list(ctx: Context, X: list[list[float]],
                        bounds: Sequence[tuple[int, int]]) -> list[list[float]]:
    D = distance.zeros(len(X), len(X))
    run_processes(ctx.mp, distance.fill_rows, ((D, X, a, b) for a, b in bounds))
    return D


def threads_into_list(X: list[list[float]],
                      bounds: Sequence[tuple[int, int]]) -> list[list[float]]:
    D = distance.zeros(len(X), len(X))
    start_and_join(distance.fill_rows, ((D, X, a, b) for a, b in bounds))
    return D


def processes_into_shared(ctx: Context, name: str, X: Any, bounds: Sequence[tuple[int, int]],
                          release_gil: bool | None) -> str:
    """One process per chunk writing its rows into the shared matrix ``name``;
    returns the name (a check reads the matrix back)."""
    run_processes(ctx.mp, fill_shared,
                  ((name, len(X), X, a, b, release_gil) for a, b in bounds))
    return name


def pool_returning_rows(pool, X: list[list[float]],
                        bounds: Sequence[tuple[int, int]]) -> list[list[float]]:
    blocks = pool.starmap(distance.distance_rows, [(X, a, b) for a, b in bounds])
    return [row for block in blocks for row in block]


def all_zeros(D: Any) -> bool:
    return not np.any(np.asarray(D))


@experiment("L0.4", title="Processes and the parent's memory",
            lecture=LECTURE,
            shows="A child process writes into its own copy: the parent's list stays "
                  "zeros, while threads running the same code fill it. Shared memory or "
                  "returned results fix it.",
            sizes={"tiny": dict(n=16, dim=4), "quick": dict(n=300, dim=50),
                   "full": dict(n=700, dim=100)},
            timer="building the whole matrix once. The Process-per-chunk variants start and "
                  "join one process per chunk in every run (the lecture's code); their "
                  "shared_memory blocks are made and touched, and the Pool started, before "
                  "timing. The pure-Python lists of lists are made inside, as the lecture does.")
def processes_memory(ctx: Context) -> Result:
    X, A, ref = dataset(ctx.params)
    n = len(X)
    bounds = row_bounds(n, ctx.cores)
    workers = len(bounds)
    close = judging.close_to(ref)

    def shared_right(name: str) -> bool:
        return close(read_shared_matrix(name, n))

    # Open until the lessons are judged: a lesson may measure more rounds.
    with contextlib.ExitStack() as stack:
        blocks = [stack.enter_context(shared_matrix(n)) for _ in range(2)]
        pool = stack.enter_context(ctx.mp.Pool(workers))
        warm_up(pool, workers)
        serial, shared = ctx.compare(
            ctx.plan("serial, pure Python", lambda: distance.distance_matrix(X),
                     backend="serial", check=close, baseline=True),
            ctx.plan("Process per chunk into shared_memory, pure Python",
                     functools.partial(processes_into_shared, ctx, blocks[0], X, bounds, None),
                     backend="shared_memory", workers=workers, check=shared_right))
        parent = ctx.measure("Process per chunk into the parent's list",
                             lambda: processes_into_list(ctx, X, bounds),
                             backend="multiprocessing.Process", workers=workers,
                             check=all_zeros, expected="stays all zeros (separate memory)")
        threads = ctx.measure("Thread per chunk into the parent's list, same code",
                              lambda: threads_into_list(X, bounds), backend="threading.Thread",
                              workers=workers, check=close)
        fixed = [
            shared,
            ctx.measure("Process per chunk into shared_memory, parlab.cdist held",
                        functools.partial(processes_into_shared, ctx, blocks[1], A, bounds,
                                          False),
                        backend="shared_memory", workers=workers, release_gil=False,
                        check=shared_right),
            ctx.measure("Pool.starmap returning rows, pure Python",
                        functools.partial(pool_returning_rows, pool, X, bounds),
                        backend="multiprocessing.Pool", workers=workers, check=close),
        ]
        nonzero = int(np.count_nonzero(np.asarray(parent.output)))
        judging.fact(ctx, "Children write into their own copy: the parent's list stays all "
                          "zeros, while threads running the same code fill it",
                     nonzero == 0 and threads.correct,
                     f"non-zero cells seen by the parent: {nonzero} after processes; "
                     f"after threads the list matches SciPy: {threads.correct}")
        matching = sum(v.correct for v in fixed)
        judging.fact(ctx, "Shared memory and returned results both bring the rows back",
                     matching == len(fixed), f"{matching} of {len(fixed)} fixes match SciPy")
        judging.speedup(ctx, "Processes speed up pure-Python rows", shared, serial)
    return ctx.result()


# ---------------------------------------------------------------- L0.5

def numpy_rows_in_sequence(A: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Fill ``D`` row after row, each row vectorised."""
    for i in range(len(A)):
        distance.numpy_row(D, A, i)
    return D


def numpy_thread_per_row(A: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Fill ``D`` with one thread per row, each row vectorised."""
    start_and_join(distance.numpy_row, ((D, A, i) for i in range(len(A))))
    return D


@experiment("L0.5", title="One thread per row, vectorised rows",
            lecture=LECTURE,
            shows="Vectorised rows are far faster than pure Python, but one thread "
                  "per row is too many tiny threads to gain from the cores.",
            sizes={"tiny": dict(n=30, dim=4), "quick": dict(n=300, dim=100),
                   "full": dict(n=1000, dim=100)},
            timer="building the whole matrix once, including starting and joining one thread "
                  "per row where there are threads (the lesson: too many tiny threads). NumPy "
                  "and parlab fill a matrix touched before timing; pure Python makes its list "
                  "of lists inside.")
def numpy_rows(ctx: Context) -> Result:
    X, A, ref = dataset(ctx.params)
    n = len(X)
    close = judging.close_to(ref)
    pure, rows, threads = ctx.compare(
        ctx.plan("serial, pure Python", lambda: distance.distance_matrix(X),
                 backend="serial", check=close, baseline=True),
        ctx.plan("serial, NumPy rows",
                 functools.partial(numpy_rows_in_sequence, A, touched_matrix(n)),
                 backend="serial", check=close, cost=Cost(compiled=True)),
        ctx.plan("thread per row, NumPy rows",
                 functools.partial(numpy_thread_per_row, A, touched_matrix(n)),
                 backend="threading.Thread", workers=n, check=close, cost=Cost(compiled=True)))
    # partial, not a lambda: each plan keeps its own release_gil.
    ctx.compare(*[ctx.plan(f"thread per row, parlab.cdist {gil_word(release)}",
                           functools.partial(blocks_in_threads, kernel_rows, A, row_bounds(n, n),
                                             release, out=touched_matrix(n)),
                           backend="threading.Thread", workers=n, release_gil=release,
                           check=close, cost=Cost(compiled=True)) for release in (True, False)])
    judging.faster(ctx, "Vectorised NumPy rows are far faster than the pure-Python loop",
                   rows, pure)
    limit = max(1.0, judging.FAR_FROM_CORES * ctx.cores)
    judging.at_most(ctx, "One thread per row is too many tiny threads: far from the core count",
                    rows, threads, limit, what=f" faster than the same rows in a loop, with {n} "
                                               f"threads on {ctx.cores} cores")
    return ctx.result()


# ---------------------------------------------------------------- L0.6

CHUNKED_TIMER = ("filling the whole matrix chunk by chunk, including starting and joining "
                 "the threads (tens of microseconds each); every variant's matrix is "
                 "allocated and written once before timing, so no page faults are timed")
CHUNKED_SIZES = {"tiny": dict(n=60, dim=8), "quick": dict(n=4000, dim=100),
                 "full": dict(n=6000, dim=100)}


def chunks_in_parallel(ctx: Context, how: str, backend: str, what: str,
                       run_blocks: Callable[..., np.ndarray], *, trace: bool = False
                       ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]], Variant]:
    """The chunks in sequence vs run by ``run_blocks`` (one task per chunk), with
    the kernel released, held, and SciPy's; the GIL lessons. Returns the points,
    SciPy's matrix, the chunk bounds and the released parallel variant.

    Each variant fills its own matrix, allocated and touched before timing:
    the timer covers the blocks' work and starting and joining their threads."""
    _, A, ref = dataset(ctx.params)
    bounds = row_bounds(len(A), ctx.cores)
    k = len(bounds)
    close = judging.close_to(ref)

    def plan(name: str, run: Callable[..., np.ndarray], task: Callable[..., None],
             *args: Any, **kwargs: Any):
        D = touched_matrix(len(A))
        return ctx.plan(name, lambda: run(task, A, bounds, *args, out=D), check=close,
                        **kwargs)

    pairs = {}
    for release in (True, False):
        pairs[release] = ctx.compare(
            plan(f"chunks in sequence, {gil_word(release)}", blocks_in_sequence, kernel_rows,
                 release, backend="serial", release_gil=release, baseline=release),
            plan(f"{how}, {gil_word(release)}", run_blocks, kernel_rows, release,
                 backend=backend, workers=k, release_gil=release, trace=trace),
            versus_first=True)
    scipy = ctx.compare(
        plan("chunks in sequence, scipy", blocks_in_sequence, scipy_rows, backend="serial"),
        plan(f"{how}, scipy", run_blocks, scipy_rows, backend=backend, workers=k,
             cost=Cost(releases=True)),
        versus_first=True)
    serial, released = pairs[True]
    can = judging.speedup(ctx, f"{what} speed up a kernel that releases the GIL",
                          released, serial)
    serial, held = pairs[False]
    judging.no_speedup(ctx, f"{what} give nothing when the kernel holds the GIL",
                       held, serial, can)
    judging.speedup(ctx, f"SciPy's cdist releases the GIL too: {what.lower()} speed it up",
                    scipy[1], scipy[0])
    return A, ref, bounds, released


@experiment("L0.6", title="Chunked distance blocks in threads",
            lecture=LECTURE,
            shows="One thread per chunk speeds up a kernel that releases the GIL; "
                  "not one that holds it.",
            sizes=CHUNKED_SIZES, timer=CHUNKED_TIMER)
def chunked_threads(ctx: Context) -> Result:
    chunks_in_parallel(ctx, "thread per chunk", "threading.Thread", "Threads",
                       blocks_in_threads, trace=True)
    return ctx.result()


# ---------------------------------------------------------------- L0.7

@experiment("L0.7", title="Chunked distance blocks with joblib threads",
            lecture=LECTURE,
            shows="joblib's thread backend behaves like hand-made threads: a speedup "
                  "only when the kernel releases the GIL.",
            sizes=CHUNKED_SIZES, timer=CHUNKED_TIMER)
def chunked_joblib(ctx: Context) -> Result:
    A, ref, bounds, joblib_v = chunks_in_parallel(ctx, "joblib threads", "joblib[threads]",
                                                  "joblib threads", blocks_in_joblib_threads)
    D = touched_matrix(len(A))
    hand = ctx.measure("thread per chunk, released",
                       lambda: blocks_in_threads(kernel_rows, A, bounds, True, out=D),
                       backend="threading.Thread", workers=len(bounds), release_gil=True,
                       check=judging.close_to(ref))
    judging.at_most(ctx, "joblib threads cost little more than hand-made threads",
                    joblib_v, hand, 1.5, what=" the time of threading.Thread")
    return ctx.result()
