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

from parlab.experiments import judging
from parlab.experiments.framework import Context, Cost, Result, experiment
from parlab.experiments.runners import (
    job_plan, run_apply_async, run_serial, run_submit, run_threads, warm_up,
)
from parlab.workloads import frames
from parlab.workloads.tasks import Job, lecture_jobs

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


def serial_plan(ctx: Context, job: Job, **kwargs):
    """The job's tasks one after the other in this thread."""
    return job_plan(ctx, job, "serial", run_serial, backend="serial", workers=1, **kwargs)


@experiment("L2.1", title="Waiting and computing tasks run one after the other",
            lecture=LECTURE,
            shows="Serially, n tasks take n times as long as one, whether they wait or compute.",
            sizes=TASK_SIZES,
            timer="one task, or the n tasks one after the other, in this thread; the compute "
                  "tasks' sizes are calibrated before timing.")
def serial_tasks(ctx: Context) -> Result:
    jobs = _jobs(ctx)
    n = ctx.params["tasks"]
    ratios, pairs = {}, {}
    for name in ("long_io", "io_wait released", "long_comp", "cpu_work released"):
        job = jobs[name]
        one = dataclasses.replace(job, expected=job.expected[:1])
        pairs[name] = ctx.compare(serial_plan(ctx, one, baseline=name == "long_io"),
                                  serial_plan(ctx, job, trace=name.endswith("released")))
        ratios[name] = pairs[name][1].seconds / pairs[name][0].seconds
    for kind, names in (("wait", ("long_io", "io_wait released")),
                        ("compute", ("long_comp", "cpu_work released"))):
        ok = all(judging.SERIAL_LOW * n <= ratios[k] <= judging.SERIAL_HIGH * n for k in names)
        judging.timing_fact(ctx, f"Serially, {n} tasks that {kind} take {n} times as long as one",
                       ok, ", ".join(f"{k}: {ratios[k]:.2f}x one task" for k in names)
                       + f" (needs {judging.SERIAL_LOW * n:.1f}x to {judging.SERIAL_HIGH * n:.1f}x)",
                       *[v for k in names for v in pairs[k]])
    from parlab import plot

    return ctx.result(figure=plot.timeline_figure)


@experiment("L2.2", title="Threads: waiting overlaps, pure-Python computing does not",
            lecture=LECTURE,
            shows="With threads, n waiting tasks take the time of one; n pure-Python "
                  "computing tasks take n times as long (the GIL). A kernel that releases "
                  "the GIL computes in parallel. Threads share the results dict.",
            sizes=TASK_SIZES,
            timer="the n tasks, one after the other or one threading.Thread each, including "
                  "starting and joining the threads (tens of microseconds each, the lecture's "
                  "code); the compute tasks' sizes are calibrated before timing.")
def threads(ctx: Context) -> Result:
    jobs = _jobs(ctx)
    n = ctx.params["tasks"]

    def threaded(name: str):
        return job_plan(ctx, jobs[name], "threads", run_threads, backend="threading.Thread",
                        workers=n, trace=name.startswith("cpu_work"))

    io_serial, io_threads, io_held, io_released = ctx.compare(
        serial_plan(ctx, jobs["long_io"]), threaded("long_io"), threaded("io_wait held"),
        threaded("io_wait released"), versus_first=True)
    py_serial, py_threads = ctx.compare(serial_plan(ctx, jobs["long_comp"]),
                                        threaded("long_comp"), versus_first=True)
    c_serial, c_threads, c_held = ctx.compare(
        serial_plan(ctx, jobs["cpu_work released"]), threaded("cpu_work released"),
        threaded("cpu_work held"), versus_first=True)
    overlaps = judging.overlap(ctx, f"{n} waiting threads take about the time of one task",
                               io_threads, io_serial, n)
    judging.no_speedup(ctx, "io_wait holding the GIL makes the waiting threads take turns",
                       io_held, io_serial, overlaps)
    can = judging.speedup(ctx, "cpu_work with the GIL released computes in parallel threads",
                          c_threads, c_serial, n)
    judging.no_speedup(ctx, "Pure-Python computing threads are no faster than serial (the GIL)",
                       py_threads, py_serial, can, needs_gil=True)
    judging.no_speedup(ctx, "cpu_work holding the GIL gives threads no speedup",
                       c_held, c_serial, can)
    threaded_runs = (io_threads, io_held, io_released, py_threads, c_threads, c_held)
    filled = sum(v.correct for v in threaded_runs)
    judging.fact(ctx, THREADS_SHARE_DICT, filled == len(threaded_runs),
                 f"dict complete after {filled} of {len(threaded_runs)} threaded runs")
    return ctx.result()


@experiment("L2.3", title="multiprocessing.Pool.apply_async: parallel, but no shared dict",
            lecture=LECTURE,
            shows="In a process pool both kinds of task run in parallel, even a kernel "
                  "holding the GIL; the dict passed to the workers stays empty in the "
                  "parent, results come back through get().",
            sizes=TASK_SIZES,
            timer="the n tasks one after the other, or one apply_async each and every get(); "
                  "the pool is started, every worker running, before timing.")
def apply_async(ctx: Context) -> Result:
    jobs = _jobs(ctx)
    n = ctx.params["tasks"]
    pairs = {}
    # One worker per task, like one thread per task in L2.2. Open until the
    # lessons are judged: a lesson may measure more rounds.
    with ctx.mp.Pool(processes=n) as pool:
        warm_up(pool, n)
        for name in ("long_io", "long_comp", "cpu_work held"):
            pairs[name] = ctx.compare(
                serial_plan(ctx, jobs[name], baseline=name == "long_io"),
                job_plan(ctx, jobs[name], "Pool.apply_async",
                         functools.partial(run_apply_async, pool),
                         backend="multiprocessing.Pool", workers=n, shares_memory=False),
                versus_first=True)
        judging.overlap(ctx, f"{n} waiting tasks in {n} processes take about the time of one",
                        pairs["long_io"][1], pairs["long_io"][0], n)
        for name, text in (("long_comp", "Pure-Python computing tasks run in parallel in "
                                         "processes"),
                           ("cpu_work held", "Even cpu_work holding the GIL runs in parallel in "
                                             "processes: each has its own GIL")):
            judging.speedup(ctx, text, pairs[name][1], pairs[name][0], n)
    outcomes = {k: pair[1].output for k, pair in pairs.items()}
    judging.fact(ctx, PROCESSES_EMPTY_DICT,
                 all(not out.shared for out in outcomes.values())
                 and all(pair[1].correct for pair in pairs.values()),
                 ", ".join(f"{k}: {len(out.shared)} entries, get() gave {len(out.returned)}"
                           for k, out in outcomes.items()))
    return ctx.result()


@experiment("L2.4", title="concurrent.futures: one API for thread and process executors",
            lecture=LECTURE,
            shows="ThreadPoolExecutor and ProcessPoolExecutor run the same code: threads "
                  "help waiting (and GIL-releasing kernels), processes help pure-Python "
                  "computing; only threads share the caller's memory.",
            sizes=TASK_SIZES,
            timer="the n tasks one after the other, or one submit each and every result(); "
                  "both executors are started, every worker running, before timing.")
def futures(ctx: Context) -> Result:
    jobs = _jobs(ctx)
    n = ctx.params["tasks"]
    names = ("long_io", "long_comp", "cpu_work released")
    v = {}
    # Open until the lessons are judged: a lesson may measure more rounds.
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as threads, \
            concurrent.futures.ProcessPoolExecutor(max_workers=n, mp_context=ctx.mp) as procs:
        warm_up(threads, n)  # its threads start on demand, like the processes
        warm_up(procs, n)
        for name in names:
            v["serial", name], v["threads", name], v["processes", name] = ctx.compare(
                serial_plan(ctx, jobs[name], baseline=name == "long_io"),
                job_plan(ctx, jobs[name], "ThreadPoolExecutor",
                         functools.partial(run_submit, threads),
                         backend="ThreadPoolExecutor", workers=n),
                job_plan(ctx, jobs[name], "ProcessPoolExecutor",
                         functools.partial(run_submit, procs), backend="ProcessPoolExecutor",
                         workers=n, shares_memory=False), versus_first=True)
        judging.overlap(ctx, f"ThreadPoolExecutor: {n} waiting tasks take about the time of one",
                        v["threads", "long_io"], v["serial", "long_io"], n)
        can = judging.speedup(ctx, "ThreadPoolExecutor: cpu_work with the GIL released runs in "
                                   "parallel", v["threads", "cpu_work released"],
                              v["serial", "cpu_work released"], n)
        judging.no_speedup(ctx, "ThreadPoolExecutor: pure-Python computing gets no speedup",
                           v["threads", "long_comp"], v["serial", "long_comp"], can,
                           needs_gil=True)
        judging.speedup(ctx, "ProcessPoolExecutor: pure-Python computing runs in parallel",
                        v["processes", "long_comp"], v["serial", "long_comp"], n)
    thread_full = all(v["threads", k].correct for k in names)
    process_empty = all(not v["processes", k].output.shared for k in names)
    judging.fact(ctx, EXECUTOR_DICTS, thread_full and process_empty,
                 f"thread tasks filled the dict: {thread_full}; "
                 f"process tasks left it empty: {process_empty}")
    return ctx.result()


@experiment("L2.5", title="pandas: vectorise first, processes only for what can't be",
            lecture=LECTURE,
            shows="A vectorised column expression beats row-wise apply by orders of "
                  "magnitude and a process pool can't catch up with it; for a per-row "
                  "hash, which can't be vectorised, the process pool pays off.",
            sizes={"tiny": dict(rows=400, rounds=5),
                   "quick": dict(rows=30_000, rounds=20),
                   "full": dict(rows=100_000, rounds=20)},
            timer="one pass over every row: apply, the column expression, a plain loop or the "
                  "executor's map (sending the columns in chunks and the results back); the "
                  "executor is started, every worker running, before timing.")
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

    # Open until the lessons are judged: a lesson may measure more rounds.
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx.mp) as ex:
        warm_up(ex, workers)
        apply, columns, pool = ctx.compare(
            ctx.plan("formula, row-wise apply", lambda: df.apply(frames.row_spread, axis=1),
                     backend="pandas", check=close, baseline=True),
            ctx.plan("formula, vectorised columns",
                     lambda: frames.spread(df["a"], df["b"], df["c"], df["d"]),
                     backend="pandas", check=close, cost=Cost(compiled=True)),
            ctx.plan("formula, ProcessPoolExecutor.map(chunksize)",
                     lambda: list(ex.map(frames.spread, df["a"], df["b"], df["c"], df["d"],
                                         chunksize=chunk)),
                     backend="ProcessPoolExecutor", workers=workers, check=close))
        h_apply, h_loop, h_pool = ctx.compare(
            # Building a Series per row costs about as much as hashing the row.
            ctx.plan("hash, row-wise apply",
                     lambda: df.apply(frames.row_digest, axis=1, rounds=p["rounds"]),
                     backend="pandas", check=same_hashes, cost=Cost(work=2)),
            ctx.plan("hash, plain loop over column values",
                     lambda: [hash_row(a, b) for a, b in zip(df["a"], df["b"])],
                     backend="serial", check=same_hashes),
            ctx.plan("hash, ProcessPoolExecutor.map(chunksize)",
                     lambda: list(ex.map(hash_row, df["a"], df["b"], chunksize=chunk)),
                     backend="ProcessPoolExecutor", workers=workers, check=same_hashes),
            versus_first=True)
        judging.faster(ctx, "Vectorise first: the column expression is far faster than row-wise "
                            "apply", columns, apply)
        judging.slower(ctx, "A process pool running the formula row by row can't catch up with "
                            "vectorised code", pool, columns, 1)
        judging.faster(ctx, "Much of apply's cost is building a Series per row: a plain loop over "
                            "the column values is already faster", h_loop, h_apply,
                       judging.NO_SPEEDUP)
        judging.faster(ctx, "For the non-vectorisable hash the process pool beats row-wise apply",
                       h_pool, h_apply, judging.NO_SPEEDUP)
        judging.speedup(ctx, "Over the same plain loop, the pool gains up to the core count",
                        h_pool, h_loop, workers)
    return ctx.result()
