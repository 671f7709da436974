"""Lecture 004, "larger-than-memory problems" (L4.4): column means in blocks, then Dask."""
from __future__ import annotations

import functools
import importlib
import tempfile
from pathlib import Path

import numpy as np

from parlab.experiments import judging
from parlab.experiments.framework import Context, Result, experiment
from parlab.workloads import larger_than_memory as ltm
from parlab.workloads.tasks import nap

LECTURE = "004_abaece415b4470b8.txt"
COLUMNS = 64
MB = 1 << 20
# The hand-written loop holds one block (and its column sums); Dask's threads
# hold one block each, plus a few it has read ahead: a quarter of the budget
# per block by hand, a quarter shared by Dask's threads.
BLOCK_SHARE = 4
# Each Dask thread also keeps bookkeeping of its own, about 0.4 MB measured with
# 16 to 64 threads: Dask runs on as many threads as cores, at most one per this
# much of the budget, so that a 64-core machine keeps within a small budget too.
DASK_THREAD_BYTES = MB


def dask_threads(cores: int, budget: int) -> int:
    """How many threads Dask reads the file with: one per core, within the budget."""
    return max(1, min(cores, budget // DASK_THREAD_BYTES))


@experiment("L4.4", title="Column means of a file larger than a memory budget: by hand in "
                          "blocks, then with dask.array",
            lecture=LECTURE,
            shows="Reading a few rows at a time keeps memory within a budget however large "
                  "the file; summing blocks weighted by their rows gives exactly the means of "
                  "the whole, by hand or with dask.array, while loading it whole needs the "
                  "file's size in memory.",
            sizes={"tiny": dict(budget_mb=4, file_mb=32),
                   "quick": dict(budget_mb=64, file_mb=512),
                   "full": dict(budget_mb=256, file_mb=2048)},
            timer="reading the file and computing its column means, whole, by hand in blocks, "
                  "or with dask.array on threads; the file is written, and Dask's thread pool "
                  "started, before timing (each run's own arrays are its lesson: memory).")
def larger_than_memory(ctx: Context) -> Result:
    importlib.import_module("dask.array")  # imported now, not inside the first timed run
    budget = ctx.params["budget_mb"] * MB
    threads = dask_threads(ctx.cores, budget)
    _start_dask_threads(threads)
    rows = ctx.params["file_mb"] * MB // (8 * COLUMNS)
    hand_rows = budget // (BLOCK_SHARE * 8 * COLUMNS)
    dask_rows = max(1, hand_rows // threads)
    # Removed on leaving the block, whatever happens inside it.
    with tempfile.TemporaryDirectory(prefix="parlab-L4.4-") as folder:
        path = Path(folder) / "data.npy"
        ctx.extras["path"] = path
        sums = ltm.write_array(path, rows, COLUMNS, block_rows=hand_rows)
        file_bytes = path.stat().st_size
        want = ltm.exact_means(sums, rows)

        def exact(means) -> bool:
            return np.array_equal(means, want)

        calls = {
            "NumPy, the whole file loaded": lambda: np.load(path).mean(axis=0),
            f"by hand, {hand_rows} rows at a time": functools.partial(
                ltm.means_by_hand, path, hand_rows),
            f"dask.array, {dask_rows}-row blocks, {threads} threads": functools.partial(
                ltm.means_with_dask, path, dask_rows, scheduler="threads",
                num_workers=threads),
        }
        whole, hand, dask = ctx.compare(*[
            ctx.plan(name, call, backend=backend, workers=workers, check=exact,
                     expected="the exact column means, bit for bit", baseline=backend == "numpy")
            for (name, call), backend, workers in zip(
                calls.items(), ["numpy", "serial", "dask.array"], [1, 1, threads])])
        # Tracing allocations slows Python down: peaks come from one separate run each.
        peaks = {name: ltm.measured(call)[1] for name, call in calls.items()}
    ctx.extras.update(peak_bytes=peaks, budget_bytes=budget, file_bytes=file_bytes)
    judge(ctx, hand, dask, whole, peaks, budget, file_bytes, removed=not path.exists())
    return ctx.result(figure="memory_figure")


def _start_dask_threads(workers: int) -> None:
    """Make Dask's threaded scheduler start (and keep) its pool of ``workers``
    threads, each running one short nap at once."""
    import dask

    dask.compute(*[dask.delayed(nap)(0.05) for _ in range(workers)], scheduler="threads",
                 num_workers=workers)


def judge(ctx: Context, hand, dask, whole, peaks: dict[str, int], budget: int,
          file_bytes: int, removed: bool) -> None:
    """The lessons, from the variants, their peak memory and whether the file is gone."""
    larger = file_bytes / budget
    for v in (hand, dask):
        peak = peaks[v.name]
        judging.fact(ctx, f"{v.name}: the peak stays under the budget while the file is larger",
                     peak < budget < file_bytes,
                     f"peak {peak / MB:.1f} MB, budget {budget / MB:.0f} MB, file "
                     f"{file_bytes / MB:.0f} MB ({larger:.0f}x the budget)")
    judging.fact(ctx, "Loading the whole file needs at least the file's size in memory",
                 peaks[whole.name] >= file_bytes,
                 f"peak {peaks[whole.name] / MB:.0f} MB for a {file_bytes / MB:.0f} MB file")
    judging.fact(ctx, "By hand and with Dask the means equal the exact means, bit for bit",
                 hand.correct and dask.correct,
                 f"by hand: {hand.correct}; Dask: {dask.correct} (exact sums of integer values)")
    judging.fact(ctx, "The file is removed afterwards", removed,
                 "removed" if removed else "still on disk")
