"""Lecture 002: threads, processes and concurrent.futures on waiting and computing tasks.

Every job here is ``tasks`` copies of one task lasting about ``task_seconds``
(compute sizes are calibrated on the machine), so all serial times are alike
and the speedups of one table can be compared with each other.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math

import numpy as np

from parlab.experiments._base import Context, Result, experiment
from parlab.experiments._fair import no_speedup_lesson, overlap_lesson, speedup_lesson
from parlab.experiments._jobs import measure_job, measure_serial, variant_name
from parlab.reference import frames
from parlab.reference.tasks import (
    Job, lecture_jobs, run_apply_async, run_submit, run_threads, warm_up,
)

LECTURE = "002_a275c6fb60d30668.txt"
TASK_SIZES = {"tiny": dict(tasks=2, task_seconds=0.01),
              "quick": dict(tasks=4, task_seconds=0.05),
              "full": dict(tasks=4, task_seconds=1.0)}

# Lessons the tests look up by their text.
THREADS_SHARE_DICT = "Threads share the caller's dict: it holds every task's result"
PROCESSES_EMPTY_DICT = ("The dict handed to worker processes stays empty in the parent; "
                        "results come back through get()")
EXECUTOR_DICTS = ("Only the thread executor's tasks fill the caller's dict; "
                  "the process executor's leave it empty")


def _jobs(ctx: Context) -> dict[str, Job]:
    return lecture_jobs(ctx.params["tasks"], ctx.params["task_seconds"])


@experiment("L2.1", title="Waiting and computing tasks run one after the other",
            lecture=LECTURE,
            shows="Serially, n tasks take n times as long as one, whether they wait or compute.",
            sizes=TASK_SIZES)
def serial_tasks(ctx: Context) -> Result:
    jobs = _jobs(ctx)
    n = ctx.params["tasks"]
    ratios = {}
    for name in ("long_io", "io_wait released", "long_comp", "cpu_work released"):
        job = jobs[name]
        one = dataclasses.replace(job, expected=job.expected[:1])
        measure_serial(ctx, one, baseline=name == "long_io")
        measure_serial(ctx, job)
        ratios[name] = (ctx.seconds(variant_name(job, "serial"))
                        / ctx.seconds(variant_name(one, "serial")))
    for kind, names in (("wait", ("long_io", "io_wait released")),
                        ("compute", ("long_comp", "cpu_work released"))):
        ok = all(0.8 * n <= ratios[k] <= 1.25 * n for k in names)
        ctx.lesson(f"Serially, {n} tasks that {kind} take {n} times as long as one", ok,
                   ", ".join(f"{k}: {ratios[k]:.2f}x one task" for k in names))
    return ctx.result()


@experiment("L2.2", title="Threads: waiting overlaps, pure-Python computing does not",
            lecture=LECTURE,
            shows="With threads, n waiting tasks take the time of one; n pure-Python "
                  "computing tasks take n times as long (the GIL). A kernel that releases "
                  "the GIL computes in parallel. Threads share the results dict.",
            sizes=TASK_SIZES)
def threads(ctx: Context) -> Result:
    jobs = _jobs(ctx)
    n = ctx.params["tasks"]
    how = "threading.Thread"
    outcomes = {}
    for name in ("long_io", "long_comp", "cpu_work released"):
        measure_serial(ctx, jobs[name], baseline=name == "long_io")
    for name in ("long_io", "io_wait released", "io_wait held",
                 "long_comp", "cpu_work released", "cpu_work held"):
        outcomes[name] = measure_job(ctx, jobs[name], "threads", run_threads, backend=how,
                                     workers=n, trace=name.startswith("cpu_work"))
    io_serial = variant_name(jobs["long_io"], "serial")
    overlap_lesson(ctx, f"{n} waiting threads take about the time of one task",
                   variant_name(jobs["long_io"], "threads"), io_serial, n)
    no_speedup_lesson(ctx, "io_wait holding the GIL makes the waiting threads take turns",
                      variant_name(jobs["io_wait held"], "threads"), io_serial)
    no_speedup_lesson(ctx, "Pure-Python computing threads are no faster than serial (the GIL)",
                      variant_name(jobs["long_comp"], "threads"),
                      variant_name(jobs["long_comp"], "serial"))
    c_serial = variant_name(jobs["cpu_work released"], "serial")
    speedup_lesson(ctx, "cpu_work with the GIL released computes in parallel threads",
                   variant_name(jobs["cpu_work released"], "threads"), c_serial, n)
    no_speedup_lesson(ctx, "cpu_work holding the GIL gives threads no speedup",
                      variant_name(jobs["cpu_work held"], "threads"), c_serial)
    filled = [k for k, out in outcomes.items() if jobs[k].shared_right(out)]
    ctx.lesson(THREADS_SHARE_DICT, len(filled) == len(outcomes),
               f"dict complete after {len(filled)} of {len(outcomes)} threaded runs")
    return ctx.result()


@experiment("L2.3", title="multiprocessing.Pool.apply_async: parallel, but no shared dict",
            lecture=LECTURE,
            shows="In a process pool both kinds of task run in parallel, even a kernel "
                  "holding the GIL; the dict passed to the workers stays empty in the "
                  "parent, results come back through get().",
            sizes=TASK_SIZES)
def apply_async(ctx: Context) -> Result:
    jobs = _jobs(ctx)
    n = ctx.params["tasks"]
    names = ("long_io", "long_comp", "cpu_work held")
    for name in names:
        measure_serial(ctx, jobs[name], baseline=name == "long_io")
    outcomes = {}
    # One worker per task, like one thread per task in L2.2.
    with ctx.mp.Pool(processes=n) as pool:
        warm_up(pool, n)
        for name in names:
            outcomes[name] = measure_job(ctx, jobs[name], "Pool.apply_async",
                                         functools.partial(run_apply_async, pool),
                                         backend="multiprocessing.Pool", workers=n,
                                         shares_memory=False)
    overlap_lesson(ctx, f"{n} waiting tasks in {n} processes take about the time of one",
                   variant_name(jobs["long_io"], "Pool.apply_async"),
                   variant_name(jobs["long_io"], "serial"), n)
    for name, text in (("long_comp", "Pure-Python computing tasks run in parallel in processes"),
                       ("cpu_work held", "Even cpu_work holding the GIL runs in parallel in "
                                         "processes: each has its own GIL")):
        speedup_lesson(ctx, text, variant_name(jobs[name], "Pool.apply_async"),
                       variant_name(jobs[name], "serial"), n)
    sizes = {k: len(out.shared) for k, out in outcomes.items()}
    ctx.lesson(PROCESSES_EMPTY_DICT, all(v == 0 for v in sizes.values()),
               ", ".join(f"{k}: {v} entries, get() gave {len(outcomes[k].returned)}"
                         for k, v in sizes.items()))
    return ctx.result()


@experiment("L2.4", title="concurrent.futures: one API for thread and process executors",
            lecture=LECTURE,
            shows="ThreadPoolExecutor and ProcessPoolExecutor run the same code: threads "
                  "help waiting (and GIL-releasing kernels), processes help pure-Python "
                  "computing; only threads share the caller's memory.",
            sizes=TASK_SIZES)
def futures(ctx: Context) -> Result:
    jobs = _jobs(ctx)
    n = ctx.params["tasks"]
    names = ("long_io", "long_comp", "cpu_work released", "cpu_work held")
    for name in ("long_io", "long_comp", "cpu_work released"):
        measure_serial(ctx, jobs[name], baseline=name == "long_io")
    outcomes = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        for name in names:
            outcomes["threads", name] = measure_job(
                ctx, jobs[name], "ThreadPoolExecutor", functools.partial(run_submit, ex),
                backend="ThreadPoolExecutor", workers=n)
    with concurrent.futures.ProcessPoolExecutor(max_workers=n, mp_context=ctx.mp) as ex:
        warm_up(ex, n)
        for name in names:
            outcomes["processes", name] = measure_job(
                ctx, jobs[name], "ProcessPoolExecutor", functools.partial(run_submit, ex),
                backend="ProcessPoolExecutor", workers=n, shares_memory=False)
    serial = {k: variant_name(jobs[k], "serial") for k in names}
    overlap_lesson(ctx, f"ThreadPoolExecutor: {n} waiting tasks take about the time of one",
                   variant_name(jobs["long_io"], "ThreadPoolExecutor"), serial["long_io"], n)
    no_speedup_lesson(ctx, "ThreadPoolExecutor: pure-Python computing gets no speedup",
                      variant_name(jobs["long_comp"], "ThreadPoolExecutor"), serial["long_comp"])
    speedup_lesson(ctx, "ThreadPoolExecutor: cpu_work with the GIL released runs in parallel",
                   variant_name(jobs["cpu_work released"], "ThreadPoolExecutor"),
                   serial["cpu_work released"], n)
    speedup_lesson(ctx, "ProcessPoolExecutor: pure-Python computing runs in parallel",
                   variant_name(jobs["long_comp"], "ProcessPoolExecutor"), serial["long_comp"], n)
    thread_full = all(jobs[k].shared_right(outcomes["threads", k]) for k in names)
    process_empty = all(not outcomes["processes", k].shared for k in names)
    ctx.lesson(EXECUTOR_DICTS, thread_full and process_empty,
               f"thread tasks filled the dict: {thread_full}; "
               f"process tasks left it empty: {process_empty}")
    return ctx.result()


@experiment("L2.5", title="pandas: vectorise first, processes only for what can't be",
            lecture=LECTURE,
            shows="A vectorised column expression beats row-wise apply by orders of "
                  "magnitude and a process pool can't catch up with it; for a per-row "
                  "hash, which can't be vectorised, the process pool pays off.",
            sizes={"tiny": dict(rows=400, rounds=5),
                   "quick": dict(rows=10_000, rounds=20),
                   "full": dict(rows=100_000, rounds=20)})
def pandas_rows(ctx: Context) -> Result:
    p = ctx.params
    df = frames.make_frame(p["rows"])
    values = df.to_numpy()
    want = frames.spread(*values.T)  # NumPy on the raw array: no pandas involved
    hash_row = functools.partial(frames.digest, rounds=p["rounds"])
    want_hash = [hash_row(a, b) for a, b in zip(df["a"].tolist(), df["b"].tolist())]
    workers = ctx.cores
    chunk = math.ceil(len(df) / workers)

    def close(out) -> bool:
        return np.allclose(np.asarray(out, dtype=float), want, rtol=1e-12, atol=0)

    def same_hashes(out) -> bool:
        return list(out) == want_hash

    ctx.measure("formula, row-wise apply", lambda: df.apply(frames.row_spread, axis=1),
                backend="pandas", check=close, baseline=True)
    ctx.measure("formula, vectorised columns",
                lambda: frames.spread(df["a"], df["b"], df["c"], df["d"]),
                backend="pandas", check=close)
    ctx.measure("hash, row-wise apply",
                lambda: df.apply(frames.row_digest, axis=1, rounds=p["rounds"]),
                backend="pandas", check=same_hashes)
    ctx.measure("hash, plain loop over column values",
                lambda: [hash_row(a, b) for a, b in zip(df["a"], df["b"])],
                backend="serial", check=same_hashes)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx.mp) as ex:
        warm_up(ex, workers)
        ctx.measure("formula, ProcessPoolExecutor.map(chunksize)",
                    lambda: list(ex.map(frames.spread, df["a"], df["b"], df["c"], df["d"],
                                        chunksize=chunk)),
                    backend="ProcessPoolExecutor", workers=workers, check=close)
        ctx.measure("hash, ProcessPoolExecutor.map(chunksize)",
                    lambda: list(ex.map(hash_row, df["a"], df["b"], chunksize=chunk)),
                    backend="ProcessPoolExecutor", workers=workers, check=same_hashes)

    s = ctx.speedup("formula, vectorised columns", "formula, row-wise apply")
    ctx.lesson("Vectorise first: the column expression is far faster than row-wise apply",
               s > 10, f"{s:.0f}x faster than apply (needs > 10x)")
    s = ctx.speedup("formula, ProcessPoolExecutor.map(chunksize)", "formula, vectorised columns")
    ctx.lesson("A process pool running the formula row by row can't catch up with "
               "vectorised code", s < 1, f"pool at {s:.3f}x the vectorised speed")
    s = ctx.speedup("hash, plain loop over column values", "hash, row-wise apply")
    ctx.lesson("Much of apply's cost is building a Series per row: a plain loop over the "
               "column values is already faster", s > 1.3, f"{s:.2f}x faster than apply")
    s = ctx.speedup("hash, ProcessPoolExecutor.map(chunksize)", "hash, row-wise apply")
    ctx.lesson("For the non-vectorisable hash the process pool beats row-wise apply", s > 1.3,
               f"{s:.2f}x faster than apply (the lecture's 'more than the core count': "
               "the pool also skips apply's per-row Series)")
    speedup_lesson(ctx, "Over the same plain loop, the pool gains up to the core count",
                   "hash, ProcessPoolExecutor.map(chunksize)",
                   "hash, plain loop over column values", workers)
    return ctx.result()
