"""Lecture 000: the distance matrix, from threads per cell to chunked kernels.

The lecture's own code (pure Python, NumPy rows) lives in
:mod:`parlab.reference.distance`; here it is measured next to ``parlab.cdist``
with the GIL released and held. Every variant builds the same matrix, so all
speedups share one baseline.
"""
from __future__ import annotations

from multiprocessing import shared_memory
from typing import Any, Callable, Iterable, Sequence

import joblib
import numpy as np
from scipy.spatial.distance import cdist as scipy_cdist

import parlab
from parlab.experiments._base import Context, Result, experiment
from parlab.experiments._fair import no_speedup_lesson, speedup_lesson
from parlab.reference import distance
from parlab.reference.tasks import gil_word

LECTURE = "000_bbe763c222011708.txt"


# ---------------------------------------------------------------- shared pieces

def dataset(p: dict[str, Any]) -> tuple[list[list[float]], np.ndarray, np.ndarray]:
    """The points as lists (for pure Python) and as an array, and SciPy's matrix."""
    X = distance.random_dataset(p["n"], p["dim"])
    A = np.array(X)
    return X, A, scipy_cdist(A, A)


def close_to(ref: np.ndarray) -> Callable[[Any], bool]:
    """A check that an output (array or list of lists) equals ``ref`` to rounding."""
    return lambda D: np.asarray(D).shape == ref.shape and np.allclose(np.asarray(D), ref)


def row_bounds(n: int, chunks: int) -> list[tuple[int, int]]:
    """``chunks`` nearly equal, non-empty ``(start, stop)`` row ranges covering ``n`` rows."""
    return [(int(c[0]), int(c[-1]) + 1)
            for c in np.array_split(np.arange(n), min(chunks, n))]


def kernel_rows(A: np.ndarray, D: np.ndarray, start: int, stop: int,
                release_gil: bool) -> None:
    """Write rows ``start:stop`` of the distance matrix of ``A`` into ``D`` with parlab."""
    parlab.cdist(A[start:stop], A, out=D[start:stop], release_gil=release_gil)


def scipy_rows(A: np.ndarray, D: np.ndarray, start: int, stop: int) -> None:
    """The lecture's block task: rows ``start:stop`` through SciPy's cdist."""
    D[start:stop] = scipy_cdist(A[start:stop], A)


def blocks_in_sequence(task: Callable[..., None], A: np.ndarray,
                       bounds: Sequence[tuple[int, int]], *args: Any) -> np.ndarray:
    """Fill a new matrix block after block in this thread."""
    D = np.empty((len(A), len(A)))
    for start, stop in bounds:
        task(A, D, start, stop, *args)
    return D


def blocks_in_threads(task: Callable[..., None], A: np.ndarray,
                      bounds: Sequence[tuple[int, int]], *args: Any) -> np.ndarray:
    """Fill a new matrix with one ``threading.Thread`` per block."""
    D = np.empty((len(A), len(A)))
    distance.start_and_join(task, ((A, D, start, stop, *args) for start, stop in bounds))
    return D


# ---------------------------------------------------------------- L0.1

@experiment("L0.1", title="Pure-Python distance matrix, in any order",
            lecture=LECTURE,
            shows="Cells are independent: any fill order gives the same matrix, "
                  "so the work is embarrassingly parallel.",
            sizes={"tiny": dict(n=30, dim=4), "quick": dict(n=250, dim=50),
                   "full": dict(n=700, dim=100)})
def pure_python_matrix(ctx: Context) -> Result:
    X, A, ref = dataset(ctx.params)
    ordered = ctx.measure("pure Python, row by row", lambda: distance.distance_matrix(X),
                          backend="serial", check=close_to(ref), baseline=True)
    shuffled = ctx.measure("pure Python, shuffled order",
                           lambda: distance.distance_matrix(X, seed=1),
                           backend="serial", check=lambda D: D == ordered)
    ctx.measure("scipy.spatial.distance.cdist", lambda: scipy_cdist(A, A),
                backend="scipy", check=close_to(np.array(ordered)))
    for release in (True, False):
        ctx.measure(f"parlab.cdist, {gil_word(release)}",
                    lambda: parlab.cdist(A, A, release_gil=release),
                    backend="serial", release_gil=release, check=close_to(ref))
    n, same = ctx.params["n"], shuffled == ordered
    ctx.lesson("Filling the cells in a shuffled order gives exactly the same matrix",
               same, f"{n}x{n} cells, shuffled == row by row: {same}")
    s = min(ctx.speedup("scipy.spatial.distance.cdist"), ctx.speedup("parlab.cdist, released"))
    ctx.lesson("A compiled kernel is far faster than the pure-Python loop",
               s > 10, f"SciPy and parlab at least {s:.0f}x faster (needs > 10x)")
    return ctx.result()


# ---------------------------------------------------------------- L0.2

def kernel_cell(A: np.ndarray, D: np.ndarray, i: int, j: int, release_gil: bool) -> None:
    """Thread task: one cell of the matrix through parlab."""
    parlab.cdist(A[i:i + 1], A[j:j + 1], out=D[i:i + 1, j:j + 1], release_gil=release_gil)


@experiment("L0.2", title="One thread per cell",
            lecture=LECTURE,
            shows="Starting n*n threads costs far more than the cells' work: "
                  "several times slower than the serial loop.",
            sizes={"tiny": dict(n=8, dim=4), "quick": dict(n=40, dim=100),
                   "full": dict(n=150, dim=100)})
def thread_per_cell(ctx: Context) -> Result:
    X, A, ref = dataset(ctx.params)
    n = len(X)
    ctx.measure("serial, pure Python", lambda: distance.distance_matrix(X),
                backend="serial", check=close_to(ref), baseline=True)
    ctx.measure("thread per cell, pure Python", lambda: distance.thread_per_cell(X),
                backend="threading.Thread", workers=n * n, check=close_to(ref))
    for release in (True, False):
        ctx.measure(f"thread per cell, parlab.cdist {gil_word(release)}",
                    lambda: _kernel_thread_per_cell(A, release),
                    backend="threading.Thread", workers=n * n, release_gil=release,
                    check=close_to(ref))
    s = ctx.speedup("thread per cell, pure Python")
    ctx.lesson("One thread per cell is several times slower than the serial loop",
               s < 0.5, f"{n * n} threads: {1 / s:.1f}x slower (needs > 2x)")
    s = ctx.speedup("thread per cell, parlab.cdist released")
    ctx.lesson("A fast kernel per cell does not help: thread start-up dominates",
               s < 1, f"{s:.2f}x the serial pure-Python loop (needs < 1x)")
    return ctx.result()


def _kernel_thread_per_cell(A: np.ndarray, release: bool) -> np.ndarray:
    n = len(A)
    D = np.empty((n, n))
    distance.start_and_join(kernel_cell, ((A, D, i, j, release)
                                          for i in range(n) for j in range(n)))
    return D


# ---------------------------------------------------------------- L0.3

@experiment("L0.3", title="One thread per row, pure Python",
            lecture=LECTURE,
            shows="Pure-Python threads take turns on the GIL: no speedup, "
                  "whether one thread per row or one per core.",
            sizes={"tiny": dict(n=20, dim=4), "quick": dict(n=250, dim=50),
                   "full": dict(n=500, dim=100)})
def thread_per_row(ctx: Context) -> Result:
    X, _, ref = dataset(ctx.params)
    n = len(X)
    ctx.measure("serial, pure Python", lambda: distance.distance_matrix(X),
                backend="serial", check=close_to(ref), baseline=True)
    ctx.measure("thread per row, pure Python", lambda: distance.thread_per_row(X),
                backend="threading.Thread", workers=n, check=close_to(ref))
    bounds = row_bounds(n, ctx.cores)
    ctx.measure("thread per core, pure Python", lambda: _pure_thread_per_block(X, bounds),
                backend="threading.Thread", workers=len(bounds), check=close_to(ref))
    no_speedup_lesson(ctx, "One thread per row gives no speedup (the GIL)",
                      "thread per row, pure Python", None)
    no_speedup_lesson(ctx, "Fewer, bigger threads do not help either: it is the GIL, "
                           "not the thread count", "thread per core, pure Python", None)
    return ctx.result()


def _pure_thread_per_block(X: list[list[float]], bounds: Iterable[tuple[int, int]]):
    D = distance.zeros(len(X), len(X))
    distance.start_and_join(distance.fill_rows, ((D, X, a, b) for a, b in bounds))
    return D


# ---------------------------------------------------------------- L0.4

def fill_shared(name: str, n: int, X: Any, start: int, stop: int,
                release_gil: bool | None) -> None:
    """Process task: attach to the shared ``n x n`` matrix by name, write its rows.

    ``release_gil=None`` computes the rows in pure Python from a list of lists;
    otherwise ``X`` is an array and parlab computes them straight into the
    shared buffer.
    """
    shm = shared_memory.SharedMemory(name=name)
    block = None
    try:
        block = np.ndarray((n, n), buffer=shm.buf)[start:stop]
        if release_gil is None:
            block[:] = distance.distance_rows(X, start, stop)
        else:
            parlab.cdist(X[start:stop], X, out=block, release_gil=release_gil)
    finally:
        # The view must go before close(), or the buffer is still exported.
        block = None
        shm.close()


def run_processes(mp: Any, target: Callable[..., None], args: Iterable[tuple]) -> None:
    """One ``Process`` per argument tuple; start all, join all, fail on a bad exit."""
    procs = [mp.Process(target=target, args=a) for a in args]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    codes = [p.exitcode for p in procs if p.exitcode != 0]
    if codes:
        raise RuntimeError(f"worker processes failed with exit codes {codes}")


def _processes_into_list(ctx: Context, X: list[list[float]],
                         bounds: Sequence[tuple[int, int]]) -> list[list[float]]:
    D = distance.zeros(len(X), len(X))
    run_processes(ctx.mp, distance.fill_rows, ((D, X, a, b) for a, b in bounds))
    return D


def _processes_into_shared(ctx: Context, X: Any, bounds: Sequence[tuple[int, int]],
                           release_gil: bool | None) -> np.ndarray:
    n = len(X)
    shm = shared_memory.SharedMemory(create=True, size=max(1, n * n * 8))
    try:
        run_processes(ctx.mp, fill_shared,
                      ((shm.name, n, X, a, b, release_gil) for a, b in bounds))
        return np.ndarray((n, n), buffer=shm.buf).copy()
    finally:
        shm.close()
        shm.unlink()


def _pool_returning_rows(ctx: Context, X: list[list[float]],
                         bounds: Sequence[tuple[int, int]]) -> list[list[float]]:
    with ctx.mp.Pool(len(bounds)) as pool:
        blocks = pool.starmap(distance.distance_rows, [(X, a, b) for a, b in bounds])
    return [row for block in blocks for row in block]


@experiment("L0.4", title="Processes and the parent's memory",
            lecture=LECTURE,
            shows="A child process writes into its own copy: the parent's list stays "
                  "zeros. Shared memory or returned results fix it.",
            sizes={"tiny": dict(n=16, dim=4), "quick": dict(n=250, dim=50),
                   "full": dict(n=700, dim=100)})
def processes_memory(ctx: Context) -> Result:
    X, A, ref = dataset(ctx.params)
    bounds = row_bounds(len(X), ctx.cores)
    workers = len(bounds)
    ctx.measure("serial, pure Python", lambda: distance.distance_matrix(X),
                backend="serial", check=close_to(ref), baseline=True)
    # Here "correct" means the behaviour the lecture predicts: nothing comes back.
    parent = ctx.measure("Process per chunk into the parent's list (expected: stays zeros)",
                         lambda: _processes_into_list(ctx, X, bounds),
                         backend="multiprocessing.Process", workers=workers,
                         check=_all_zeros)
    fixed = [
        ctx.measure("Process per chunk into shared_memory, pure Python",
                    lambda: _processes_into_shared(ctx, X, bounds, None),
                    backend="shared_memory", workers=workers, check=close_to(ref)),
        ctx.measure("Process per chunk into shared_memory, parlab.cdist held",
                    lambda: _processes_into_shared(ctx, A, bounds, False),
                    backend="shared_memory", workers=workers, release_gil=False,
                    check=close_to(ref)),
        ctx.measure("Pool.starmap returning rows, pure Python",
                    lambda: _pool_returning_rows(ctx, X, bounds),
                    backend="multiprocessing.Pool", workers=workers, check=close_to(ref)),
    ]
    ctx.lesson("Children write into their own copy: the parent's list stays all zeros",
               _all_zeros(parent), f"non-zero cells seen by the parent: "
                                   f"{int(np.count_nonzero(np.asarray(parent)))}")
    matching = sum(close_to(ref)(D) for D in fixed)
    ctx.lesson("Shared memory and returned results both bring the rows back",
               matching == len(fixed), f"{matching} of {len(fixed)} fixes match SciPy")
    speedup_lesson(ctx, "Processes speed up pure-Python rows",
                   "Process per chunk into shared_memory, pure Python", None, workers)
    return ctx.result()


def _all_zeros(D: Any) -> bool:
    return not np.any(np.asarray(D))


# ---------------------------------------------------------------- L0.5

def _numpy_rows_in_sequence(A: np.ndarray) -> np.ndarray:
    D = np.zeros((len(A), len(A)))
    for i in range(len(A)):
        distance.numpy_row(D, A, i)
    return D


def _kernel_thread_per_row(A: np.ndarray, release: bool) -> np.ndarray:
    return blocks_in_threads(kernel_rows, A, row_bounds(len(A), len(A)), release)


@experiment("L0.5", title="One thread per row, vectorised rows",
            lecture=LECTURE,
            shows="Vectorised rows are far faster than pure Python, but one thread "
                  "per row is too many tiny threads to gain from the cores.",
            sizes={"tiny": dict(n=30, dim=4), "quick": dict(n=300, dim=100),
                   "full": dict(n=1000, dim=100)})
def numpy_rows(ctx: Context) -> Result:
    X, A, ref = dataset(ctx.params)
    n = len(X)
    ctx.measure("serial, pure Python", lambda: distance.distance_matrix(X),
                backend="serial", check=close_to(ref), baseline=True)
    ctx.measure("serial, NumPy rows", lambda: _numpy_rows_in_sequence(A),
                backend="serial", check=close_to(ref))
    ctx.measure("thread per row, NumPy rows", lambda: distance.numpy_thread_per_row(A),
                backend="threading.Thread", workers=n, check=close_to(ref))
    for release in (True, False):
        ctx.measure(f"thread per row, parlab.cdist {gil_word(release)}",
                    lambda: _kernel_thread_per_row(A, release),
                    backend="threading.Thread", workers=n, release_gil=release,
                    check=close_to(ref))
    s = ctx.speedup("thread per row, NumPy rows")
    ctx.lesson("Vectorised NumPy rows are far faster than the pure-Python loop",
               s > 5, f"{s:.1f}x (needs > 5x)")
    s = ctx.speedup("thread per row, NumPy rows", over="serial, NumPy rows")
    limit = max(1.0, 0.5 * ctx.cores)
    ctx.lesson("One thread per row is too many tiny threads: far from the core count",
               s < limit, f"{s:.2f}x over the same rows in a loop with {n} threads "
                          f"on {ctx.cores} cores (needs < {limit:.2f}x)")
    return ctx.result()


# ---------------------------------------------------------------- L0.6

CHUNKED_SIZES = {"tiny": dict(n=60, dim=8), "quick": dict(n=3000, dim=64),
                 "full": dict(n=6000, dim=100)}


def _chunked_setup(ctx: Context) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Points, SciPy's matrix and one row block per core, after one untimed pass."""
    _, A, ref = dataset(ctx.params)
    bounds = row_bounds(len(A), ctx.cores)
    # The first fill of a fresh n x n matrix pays page faults that later ones
    # don't; without this pass the first variant measured looks slow.
    blocks_in_sequence(kernel_rows, A, bounds, True)
    return A, ref, bounds


def _chunks_in_parallel(ctx: Context, how: str, backend: str, what: str,
                        run_blocks: Callable[..., np.ndarray], *, trace: bool = False
                        ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """The chunks in sequence vs run by ``run_blocks`` (one task per chunk), with
    the kernel released, held, and SciPy's; the two GIL lessons. Returns the
    points, SciPy's matrix and the chunk bounds for further variants."""
    A, ref, bounds = _chunked_setup(ctx)
    k = len(bounds)
    for release in (True, False):
        ctx.measure(f"chunks in sequence, {gil_word(release)}",
                    lambda: blocks_in_sequence(kernel_rows, A, bounds, release),
                    backend="serial", release_gil=release, check=close_to(ref),
                    baseline=release)
        ctx.measure(f"{how}, {gil_word(release)}",
                    lambda: run_blocks(kernel_rows, A, bounds, release),
                    backend=backend, workers=k, release_gil=release,
                    check=close_to(ref), trace=trace)
    ctx.measure("chunks in sequence, scipy", lambda: blocks_in_sequence(scipy_rows, A, bounds),
                backend="serial", check=close_to(ref))
    ctx.measure(f"{how}, scipy", lambda: run_blocks(scipy_rows, A, bounds),
                backend=backend, workers=k, check=close_to(ref))
    speedup_lesson(ctx, f"{what} speed up a kernel that releases the GIL",
                   f"{how}, released", "chunks in sequence, released", k)
    no_speedup_lesson(ctx, f"{what} give nothing when the kernel holds the GIL",
                      f"{how}, held", "chunks in sequence, held")
    return A, ref, bounds


@experiment("L0.6", title="Chunked distance blocks in threads",
            lecture=LECTURE,
            shows="One thread per chunk speeds up a kernel that releases the GIL; "
                  "not one that holds it.",
            sizes=CHUNKED_SIZES)
def chunked_threads(ctx: Context) -> Result:
    _, _, bounds = _chunks_in_parallel(ctx, "thread per chunk", "threading.Thread", "Threads",
                                       blocks_in_threads, trace=True)
    speedup_lesson(ctx, "SciPy's cdist releases the GIL too: its threads speed up",
                   "thread per chunk, scipy", "chunks in sequence, scipy", len(bounds))
    return ctx.result()


# ---------------------------------------------------------------- L0.7

def joblib_threads(task: Callable[..., None], A: np.ndarray,
                   bounds: Sequence[tuple[int, int]], *args: Any) -> np.ndarray:
    """Fill a new matrix with ``joblib.Parallel(prefer="threads")``, one task per block."""
    D = np.empty((len(A), len(A)))
    joblib.Parallel(n_jobs=len(bounds), prefer="threads")(
        joblib.delayed(task)(A, D, a, b, *args) for a, b in bounds)
    return D


@experiment("L0.7", title="Chunked distance blocks with joblib threads",
            lecture=LECTURE,
            shows="joblib's thread backend behaves like hand-made threads: a speedup "
                  "only when the kernel releases the GIL.",
            sizes=CHUNKED_SIZES)
def chunked_joblib(ctx: Context) -> Result:
    A, ref, bounds = _chunks_in_parallel(ctx, "joblib threads", "joblib[threads]",
                                         "joblib threads", joblib_threads)
    ctx.measure("thread per chunk, released",
                lambda: blocks_in_threads(kernel_rows, A, bounds, True),
                backend="threading.Thread", workers=len(bounds), release_gil=True,
                check=close_to(ref))
    ratio = ctx.seconds("joblib threads, released") / ctx.seconds("thread per chunk, released")
    ctx.lesson("joblib threads cost little more than hand-made threads",
               ratio < 1.5, f"joblib takes {ratio:.2f}x the time of threading.Thread "
                            "(needs < 1.5x)")
    return ctx.result()
