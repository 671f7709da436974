"""Lecture 003: threads and their arguments, races, locks, overlapping I/O, Monte Carlo pi."""
from __future__ import annotations

import functools
import math
import threading
import time

import numpy as np
from scipy.spatial.distance import cdist as scipy_cdist

import parlab
from parlab._info import gil_enabled
from parlab.experiments import judging
from parlab.experiments.framework import Context, Cost, Result, experiment
from parlab.experiments.runners import (
    double_buffered, per_thread_slots, run_together, sequential, split, touched_matrix,
)
from parlab.presentation import gil_word
from parlab.workloads import numba_pi, tasks

LECTURE = "003_34ca9651d8197462.txt"

# Lessons the tests look up by their text.
SCALAR_COPIED = ("Rebinding an int parameter inside a thread leaves the caller's variable "
                 "unchanged; a name both share (nonlocal) carries the result back")
NOT_THREADS = ("It is scoping, not threads: a plain call that rebinds its int parameter "
               "leaves the caller's variable unchanged too")
LIST_SHARED = "A list passed to a thread is shared: the thread's write is visible after join()"
LOST_UPDATES = "Two threads doing load-then-store with the GIL released lose updates (a race)"
CONTENTION = ("Two threads atomically incrementing one shared counter are slower than two "
              "threads with a counter each: every atomic add must take the shared counter's "
              "cache line from the other core")
NUMBA_NOGIL = "numba compiled with nogil=True runs in parallel threads"
NUMBA_HELD = ("numba without nogil=True (as the lecture writes it) holds the GIL: its threads "
              "take turns")
NUMBA_PARALLEL = "numba parallel=True splits the loop over its own threads"

# Probing for a race repeats a run of a few milliseconds; this bounds the tries.
RACE_ATTEMPTS = 20


def _largest_prime(lower: int, upper: int) -> int:
    """Sieve of Eratosthenes in NumPy: an independent check of the pure-Python search."""
    sieve = np.ones(upper + 1, dtype=bool)
    sieve[:2] = False
    for p in range(2, math.isqrt(upper) + 1):
        if sieve[p]:
            sieve[p * p::p] = False
    return int(np.flatnonzero(sieve[lower:])[-1] + lower)


@experiment("L3.1", title="Thread arguments: an int is copied, a list is shared",
            lecture=LECTURE,
            shows="start() runs a function in a new thread and join() waits for it. Rebinding "
                  "a parameter inside the function never reaches the caller (that is Python's "
                  "scoping, threads or not); writes into a shared list do, after join().",
            sizes={"tiny": dict(lower=1_000, upper=2_000),
                   "quick": dict(lower=10_000, upper=40_000),
                   "full": dict(lower=1_000, upper=400_000)},
            timer="one prime search, in this thread or in a thread started and joined inside "
                  "the run (start() and join() are the lesson).")
def arguments(ctx: Context) -> Result:
    lower, upper = ctx.params["lower"], ctx.params["upper"]
    want = _largest_prime(lower, upper)
    initial = 5

    def int_in_thread():
        """The caller's int after a thread rebound its parameter, and the
        thread's own last value."""
        last = initial
        found = run_together([functools.partial(tasks.last_prime_scalar, lower, upper, last)])[0]
        return last, found

    def int_in_call():
        last = initial
        found = tasks.last_prime_scalar(lower, upper, last)
        return last, found

    def nonlocal_in_thread():
        """The caller's variable after a thread rebound it through ``nonlocal``."""
        last = initial

        def search():
            nonlocal last
            last = tasks.last_prime_scalar(lower, upper, last)

        run_together([search])
        return last

    def list_in_thread():
        last = [initial]
        run_together([functools.partial(tasks.last_prime_slot, lower, upper, last)])
        return last

    def search(last, go):
        go.wait()
        with ctx.span("thread: prime search, writes last[0]"):
            tasks.last_prime_slot(lower, upper, last)

    def before_and_after_join():
        last, go = [initial], threading.Event()
        t = threading.Thread(target=search, args=(last, go), name="worker thread")
        with ctx.span("start()"):
            t.start()
        with ctx.span("reads last[0] before join()"):
            before = last[0]  # the thread is parked on `go`: it cannot have written yet
        go.set()
        with ctx.span("join(): waits for the thread"):
            t.join()
        return before, last[0]

    def serial_call():
        last = [initial]
        tasks.last_prime_slot(lower, upper, last)
        return last

    def counter_in_thread():
        counter = parlab.Counter(initial)
        t = threading.Thread(target=counter.increment, args=(upper,))
        t.start()
        t.join()
        return counter.value

    unchanged = f"caller's int stays {initial}; the function's copy reaches {want}"
    ctx.measure("serial call, list argument", serial_call, backend="serial",
                check=[want].__eq__, baseline=True, expected=f"list holds {want}")
    by_call = ctx.measure("serial call, int argument", int_in_call, backend="serial",
                          check=(initial, want).__eq__, expected=unchanged)
    by_thread = ctx.measure("thread, int argument", int_in_thread, backend="threading.Thread",
                            check=(initial, want).__eq__, expected=unchanged)
    by_name = ctx.measure("thread, nonlocal variable", nonlocal_in_thread,
                          backend="threading.Thread", check=want.__eq__,
                          expected=f"caller's variable becomes {want}")
    slot = ctx.measure("thread, list argument", list_in_thread, backend="threading.Thread",
                       check=[want].__eq__, expected=f"list holds {want} after join()")
    order = ctx.measure("thread, list argument, read before and after join()",
                        before_and_after_join, backend="threading.Thread", trace=True,
                        check=(initial, want).__eq__, expected=f"{initial} before, {want} after")
    total = ctx.measure("thread, parlab.Counter argument", counter_in_thread,
                        backend="threading.Thread", release_gil=True,
                        check=(initial + upper).__eq__, expected=f"{initial} + {upper}")

    judging.fact(ctx, SCALAR_COPIED, by_thread.correct and by_name.correct,
                 f"after the thread with the int parameter: {by_thread.output[0]} (its copy "
                 f"ended at {by_thread.output[1]}); after the thread rebinding a nonlocal "
                 f"name: {by_name.output}")
    judging.fact(ctx, NOT_THREADS, by_call.correct,
                 f"after a plain call: {by_call.output[0]} (its copy ended at "
                 f"{by_call.output[1]})")
    judging.fact(ctx, LIST_SHARED, slot.correct, f"caller's list after join(): {slot.output}")
    judging.fact(ctx, "Before join() the thread has not written yet: read results only after "
                      "join()", order.correct,
                 "list held {}, then {}".format(*order.output))
    judging.fact(ctx, "A parlab.Counter argument is shared like the list", total.correct,
                 f"value {total.output} = {initial} + {upper} increments made in the thread")
    return ctx.result(figure="timeline_figure")


def _python_threads(target, total: int, threads: int, *extra) -> int:
    """``threads`` threads share ``total`` pure-Python increments of one list slot."""
    slot = [0]
    run_together([functools.partial(target, slot, k, *extra) for k in split(total, threads)])
    return slot[0]


def _counter_threads(total: int, threads: int, mode: str, release_gil: bool = True) -> int:
    """``threads`` threads share ``total`` increments of one parlab.Counter; the final count."""
    counter = parlab.Counter()
    run_together([functools.partial(counter.increment, k, mode=mode, release_gil=release_gil)
                  for k in split(total, threads)])
    return counter.value


def _own_counters(total: int, threads: int, mode: str) -> int:
    """``threads`` threads share ``total`` increments, each on a Counter of its
    own (nothing shared, nothing lost); the sum of the final counts."""
    counters = [parlab.Counter() for _ in range(threads)]
    run_together([functools.partial(c.increment, k, mode=mode)
                  for c, k in zip(counters, split(total, threads))])
    return sum(c.value for c in counters)


def exactly(total: int):
    return total.__eq__


def at_most(total: int):
    # Racy variants: updates get lost, never invented, and the run completes.
    return lambda v: 0 < v <= total


# Atomic adds cost several times a plain one: so many fewer of them.
ATOMIC_SHARE = 10


@experiment("L3.2", title="A race: two threads increment one counter",
            lecture=LECTURE,
            shows="Unprotected load-then-store increments from two threads running at "
                  "once lose updates; with the GIL held they take turns and lose none. "
                  "Sharing is also slow: two threads atomically incrementing one counter "
                  "are slower than two threads with a counter each, as both fight over "
                  "the one cache line holding the shared counter.",
            # Per thread. The C loop does a million increments in well under a
            # millisecond, less than it can take the second thread to get going
            # on a busy machine, so the Counter gets more of them than the
            # lecture's pure-Python loop.
            sizes={"tiny": dict(increments=200_000, kernel_increments=20_000_000),
                   "quick": dict(increments=1_000_000, kernel_increments=20_000_000),
                   "full": dict(increments=1_000_000, kernel_increments=50_000_000)},
            timer="making the counter and doing every increment, in one thread or in threads "
                  "started and joined inside the run and released together by a barrier.")
def race(ctx: Context) -> Result:
    n, k = ctx.params["increments"], ctx.params["kernel_increments"]
    lossy = "at most the total: updates may be lost, never invented"
    py_one, py_two = ctx.compare(
        ctx.plan(f"pure Python slot[0] += 1, 1 thread x {2 * n:,}",
                 lambda: _python_threads(tasks.add_one_each, 2 * n, 1),
                 backend="serial", check=exactly(2 * n), baseline=True,
                 expected=f"exactly {2 * n:,}"),
        ctx.plan(f"pure Python slot[0] += 1, 2 threads x {n:,}",
                 lambda: _python_threads(tasks.add_one_each, 2 * n, 2),
                 backend="threading.Thread", workers=2, check=at_most(2 * n), expected=lossy))
    one = ctx.plan(f"Counter racy, 1 thread x {2 * k:,}", lambda: _counter_threads(2 * k, 1, "racy"),
                   backend="serial", release_gil=True, check=exactly(2 * k),
                   expected=f"exactly {2 * k:,}")
    c_one, racy, held = ctx.compare(
        one,
        ctx.plan(f"Counter racy, 2 threads x {k:,}, GIL released",
                 lambda: _counter_threads(2 * k, 2, "racy", True),
                 backend="threading.Thread", workers=2, release_gil=True,
                 check=at_most(2 * k), expected=lossy, trace=True),
        ctx.plan(f"Counter racy, 2 threads x {k:,}, GIL held",
                 lambda: _counter_threads(2 * k, 2, "racy", False),
                 backend="threading.Thread", workers=2, release_gil=False,
                 check=exactly(2 * k), expected=f"exactly {2 * k:,} (the threads take turns)",
                 trace=True), versus_first=True)
    # Contention, shown with atomic adds: each must own the cache line, on any
    # CPU (a racy store may sit in a core's store buffer and hide it).
    a = k // ATOMIC_SHARE
    shared, own = ctx.compare(
        ctx.plan(f"Counter atomic, 2 threads x {a:,}, one shared counter",
                 lambda: _counter_threads(2 * a, 2, "atomic"), backend="threading.Thread",
                 workers=2, release_gil=True, check=exactly(2 * a), expected=f"exactly {2 * a:,}",
                 cost=Cost(shared="line")),
        ctx.plan(f"Counter atomic, 2 threads x {a:,}, a counter each",
                 lambda: _own_counters(2 * a, 2, "atomic"), backend="threading.Thread",
                 workers=2, release_gil=True, check=exactly(2 * a),
                 expected=f"exactly {2 * a:,} in all"), versus_first=True)

    # The threads may still miss each other when the machine is busy: try
    # again a few times before concluding that nothing was lost.
    count, attempt = racy.output, 1
    while count == 2 * k and attempt < RACE_ATTEMPTS:
        count = _counter_threads(2 * k, 2, "racy", True)
        attempt += 1
    ctx.extras["counts"] = {py_one.name: (py_one.output, 2 * n),
                            py_two.name: (py_two.output, 2 * n), c_one.name: (c_one.output, 2 * k),
                            racy.name: (count, 2 * k), held.name: (held.output, 2 * k),
                            shared.name: (shared.output, 2 * a), own.name: (own.output, 2 * a)}
    observed = f"lost {2 * k - count:,} of {2 * k:,} updates (run {attempt})"
    if ctx.cores < 2:
        judging.skipped(ctx, LOST_UPDATES, observed + "; only 1 core: the threads take turns")
    else:
        judging.fact(ctx, LOST_UPDATES, count < 2 * k, observed)
    judging.fact(ctx, "With the GIL held the same racy increments lose nothing: the threads "
                      "take turns", held.output == 2 * k, f"count {held.output:,} of {2 * k:,}")
    # Without a GIL the pure-Python race is back, and its threads too may miss
    # each other: try again before concluding that nothing was lost.
    py_count, py_attempt = py_two.output, 1
    while not gil_enabled() and py_count == 2 * n and py_attempt < RACE_ATTEMPTS:
        py_count = _python_threads(tasks.add_one_each, 2 * n, 2)
        py_attempt += 1
    judging.fact(ctx, "Pure-Python slot[0] += 1 in two threads loses nothing on CPython 3.10 "
                      "and later: the GIL changes hands only at loop back-edges and calls",
                 py_count == 2 * n, f"count {py_count:,} of {2 * n:,} (run {py_attempt})",
                 needs_gil=True)
    if ctx.cores >= 2:
        judging.slower(ctx, CONTENTION, shared, own, judging.SHARED_LINE_COST)
    else:
        judging.skipped(ctx, CONTENTION, "only 1 core: the threads take turns on it")
    return ctx.result(figure="counts_figure")


@experiment("L3.3", title="Locks: exact counts, at a price",
            lecture=LECTURE,
            shows="A lock (or an atomic add) makes the count exact; it costs time, and 100 "
                  "threads contending for one lock are far slower than one thread doing "
                  "all the increments.",
            sizes={"tiny": dict(increments=200_000, many=100),
                   "quick": dict(increments=1_000_000, many=100),
                   "full": dict(increments=10_000_000, many=100)},
            timer="making the counter (and lock) and doing every increment, including starting "
                  "and joining the threads, released together by a barrier: the 100 threads' "
                  "start-up is part of what crowding costs.")
def locks(ctx: Context) -> Result:
    n, many = ctx.params["increments"], ctx.params["many"]
    exact = f"exactly {n:,}"
    py_lock = functools.partial(_python_threads, tasks.add_one_each_locked, n)
    # An increment under a lock costs about three plain ones, an atomic add two;
    # every step of every thread writes the one counter (or takes the one lock).
    step = {"racy": Cost(shared="line"), "atomic": Cost(work=2, shared="line"),
            "locked": Cost(work=3, shared="lock")}
    py_alone, py_locked_alone, _, py_crowd = ctx.compare(
        ctx.plan("pure Python, 1 thread, no lock", lambda: _python_threads(tasks.add_one_each, n, 1),
                 backend="serial", check=exactly(n), baseline=True, expected=exact),
        *[ctx.plan(f"pure Python + threading.Lock, {t} thread{'s' * (t > 1)}",
                   lambda t=t: py_lock(t, threading.Lock()),
                   backend="serial" if t == 1 else "threading.Thread", workers=t,
                   check=exactly(n), expected=exact, cost=step["locked"]) for t in (1, 2, many)])
    racy = ctx.plan("Counter racy, 2 threads", lambda: _counter_threads(n, 2, "racy"),
                    backend="threading.Thread", workers=2, release_gil=True,
                    check=at_most(n), expected="at most the total (updates get lost)",
                    cost=step["racy"])
    guarded = [ctx.plan(f"Counter {mode}, {t} thread{'s' * (t > 1)}",
                        functools.partial(_counter_threads, n, t, mode),
                        backend="serial" if t == 1 else "threading.Thread", workers=t,
                        release_gil=True, check=exactly(n), expected=exact, cost=step[mode])
               for mode, t in (("locked", 1), ("locked", 2), ("atomic", 2), ("locked", many))]
    racy, locked_alone, locked, atomic, locked_crowd = ctx.compare(racy, *guarded)
    exact_ones = (locked_alone, locked, atomic, locked_crowd)
    ctx.extras["counts"] = {v.name: (v.output, n) for v in (
        py_alone, py_locked_alone, py_crowd, racy, *exact_ones)}
    judging.fact(ctx, "A lock, or an atomic add, makes the count exact",
                 all(v.correct for v in exact_ones),
                 ", ".join(f"{v.name}: {v.output:,}" for v in exact_ones) + f" (of {n:,})")
    judging.slower(ctx, "The lock costs time: locked increments are slower than racy ones",
                   locked, racy, 1)
    judging.faster(ctx, "An atomic add is cheaper than a lock", atomic, locked, 1)
    judging.slower(ctx, f"{many} pure-Python threads with threading.Lock are far slower than "
                        "one thread doing every increment", py_crowd, py_alone,
                   judging.CROWD_SLOWER)
    # Threads that release the GIL contend for the lock only where two of them
    # run at once: on one core each runs its time slice with the lock to itself.
    crowd_on_lock = (f"{many} threads on Counter locked are far slower than one thread doing "
                     "every increment")
    if ctx.cores < 2:
        ratio = ctx.current(locked_crowd).seconds / ctx.current(locked_alone).seconds
        judging.skipped(ctx, crowd_on_lock, f"{ratio:.2f}x"
                        "; only 1 core: the threads take turns, the lock never contends")
    else:
        judging.slower(ctx, crowd_on_lock, locked_crowd, locked_alone, judging.LOCK_CROWD_SLOWER)
    return ctx.result(figure="counts_figure")


@experiment("L3.4", title="Overlapping reading and computing (double buffering)",
            lecture=LECTURE,
            shows="A thread reading chunk k+1 while the main thread computes chunk k hides "
                  "the reading time, as long as neither holds the GIL.",
            sizes={"tiny": dict(chunks=3, rows=100, dim=8),
                   "quick": dict(chunks=8, rows=1_500, dim=64),
                   "full": dict(chunks=12, rows=1_500, dim=128)},
            timer="reading and computing every chunk, including starting and joining the "
                  "reader thread of each chunk where it is double-buffered; each variant's "
                  "distance blocks are allocated and touched before timing.")
def double_buffering(ctx: Context) -> Result:
    p = ctx.params
    rng = np.random.default_rng(0)
    blocks = [rng.random((p["rows"], p["dim"])) for _ in range(p["chunks"])]
    want = [scipy_cdist(b, b) for b in blocks]
    # The lecture's premise: reading a chunk takes as long as processing it.
    out = touched_matrix(p["rows"])
    read_seconds = min(_timed(functools.partial(parlab.cdist, out=out), blocks[0], blocks[0])
                       for _ in range(3))
    py_iters = tasks.calibrate(tasks.compute_loop, read_seconds)
    py_value = parlab.cpu_work(py_iters)

    def kernels(release: bool):
        """A read and a compute step writing into distance blocks of their own."""
        outs = [touched_matrix(p["rows"]) for _ in blocks]

        def read(k):
            parlab.io_wait(read_seconds, release_gil=release)
            return k

        def compute(k):
            return parlab.cdist(blocks[k], blocks[k], out=outs[k], release_gil=release)

        return read, compute

    def pure_read(k):
        tasks.nap(read_seconds)
        return k

    def pure_compute(_):
        return tasks.compute_loop(py_iters)

    def distances_right(out) -> bool:
        return len(out) == len(want) and all(np.allclose(d, w) for d, w in zip(out, want))

    pipelines = (("sequential", sequential, "serial", 1),
                 ("double-buffered", double_buffered, "threading.Thread", 2))
    # Reading takes as long as computing; a reader thread is started per chunk.
    chunked = Cost(tasks=p["chunks"], starts=p["chunks"], wait=0.5, pipeline=True)
    pairs = {}
    for release in (True, False):
        pairs[release] = ctx.compare(*[
            ctx.plan(f"{how}, io_wait + cdist, GIL {gil_word(release)}",
                     functools.partial(pipeline, *kernels(release), p["chunks"]),
                     backend=backend, workers=workers, release_gil=release,
                     check=distances_right, cost=chunked)
            for how, pipeline, backend, workers in pipelines], versus_first=True)
    pure = ctx.compare(*[
        ctx.plan(f"{how}, time.sleep + pure-Python loop",
                 functools.partial(pipeline, pure_read, pure_compute, p["chunks"]),
                 backend=backend, workers=workers, check=([py_value] * p["chunks"]).__eq__,
                 cost=chunked)
        for how, pipeline, backend, workers in pipelines], versus_first=True)
    # Waiting needs no core, so the overlap works on one core as well.
    can = judging.faster(ctx, "Reading the next chunk while computing this one hides the "
                              "reading time", pairs[True][1], pairs[True][0], judging.PIPELINE_GAIN)
    judging.faster(ctx, "Pure Python overlaps too: time.sleep lets go of the GIL while it waits",
                   pure[1], pure[0], judging.PIPELINE_GAIN)
    judging.no_speedup(ctx, "With kernels holding the GIL the overlap disappears",
                       pairs[False][1], pairs[False][0], can)
    return ctx.result()


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


@experiment("L3.5", title="Monte Carlo pi: one result slot per thread, then a reduction",
            lecture=LECTURE,
            shows="Splitting the samples over threads, each writing only its own slot, and "
                  "summing afterwards gives exactly the serial count; it is faster only "
                  "when the compiled loop releases the GIL (parlab released, numba "
                  "nogil=True) or parallelises itself (numba parallel=True).",
            sizes={"tiny": dict(samples=200_000, seed=3),
                   "quick": dict(samples=200_000_000, seed=3),
                   "full": dict(samples=1_000_000_000, seed=3)},
            timer="counting every sample, in one call or split over threads started and joined "
                  "inside the run, plus the sum of their slots; numba's functions are compiled, "
                  "and its own threads started, before timing.")
def monte_carlo(ctx: Context) -> Result:
    n, seed = ctx.params["samples"], ctx.params["seed"]
    threads = ctx.cores

    def kernel(release: bool):
        return functools.partial(_count_hits_chunk, seed=seed, release_gil=release)

    # Every split of the stream must give exactly the serial count.
    serial = ctx.plan("count_hits, serial", lambda: parlab.count_hits(n, seed=seed),
                      backend="serial", release_gil=True, check=judging.hits_plausible(n),
                      expected="pi within 6 standard deviations", baseline=True)
    same = "the serial count, exactly"
    serial, released, held = ctx.compare(serial, *[
        ctx.plan(f"count_hits GIL {gil_word(release)}, {threads} threads, slots + sum",
                 lambda release=release: per_thread_slots(kernel(release), n, threads),
                 backend="threading.Thread", workers=threads, release_gil=release,
                 check=lambda total: total == serial.output, expected=same)
        for release in (True, False)])
    can = judging.speedup(ctx, "count_hits with the GIL released: per-thread slots run in "
                               "parallel", released, serial)
    judging.no_speedup(ctx, "count_hits holding the GIL: the threads take turns",
                       held, serial, can)

    compiled = numba_pi.compiled()
    numba_lessons = (NUMBA_NOGIL, NUMBA_HELD, NUMBA_PARALLEL)
    if compiled is None:
        for text in numba_lessons:
            judging.skipped(ctx, text, f"{numba_pi.why_missing()}: its rows are skipped")
        return ctx.result()
    key = numba_pi.seed_key(seed)
    want = serial.output
    nb_serial, nb_held, nb_nogil, nb_parallel = ctx.compare(
        ctx.plan("numba njit, serial", lambda: compiled.held(n, key, 0), backend="numba",
                 check=want.__eq__, expected=same),
        *[ctx.plan(f"numba {name}, {threads} threads, slots + sum",
                   lambda fn=fn: per_thread_slots(functools.partial(_numba_chunk, fn, key),
                                                  n, threads),
                   backend="threading.Thread", workers=threads, check=want.__eq__,
                   expected=same, cost=Cost(releases=nogil))
          for name, fn, nogil in (("njit (holds the GIL)", compiled.held, None),
                                  ("njit(nogil=True)", compiled.nogil, True))],
        ctx.plan("numba parallel=True (prange reduction)", lambda: compiled.parallel(n, key, 0),
                 backend="numba", workers=threads, check=want.__eq__, expected=same),
        versus_first=True)
    can = judging.speedup(ctx, NUMBA_NOGIL, nb_nogil, nb_serial)
    judging.no_speedup(ctx, NUMBA_HELD, nb_held, nb_serial, can)
    judging.speedup(ctx, NUMBA_PARALLEL, nb_parallel, nb_serial, threads)
    return ctx.result()


def _count_hits_chunk(size: int, start: int, *, seed: int, release_gil: bool) -> int:
    return parlab.count_hits(size, seed=seed, start=start, release_gil=release_gil)


def _numba_chunk(fn, key, size: int, start: int) -> int:
    return fn(size, key, start)
