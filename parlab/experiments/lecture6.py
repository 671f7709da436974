"""Beyond the lectures: Python without the GIL (free-threaded CPython 3.13t and newer).

A free-threaded interpreter runs with its GIL off, and can switch it back on
with ``PYTHON_GIL=1``. Every experiment here runs its work in worker
processes of this interpreter (:mod:`parlab.experiments.interpreters`), with
the GIL forced off and on where the build allows both, so that the two are
measured side by side, interleaved. On a normal build the GIL-off variants
cannot run: their lessons are skipped, saying so.
"""
from __future__ import annotations

import contextlib
import functools
import math
import threading
import time

import parlab
from parlab.experiments import judging
from parlab.experiments.framework import Context, Result, experiment
from parlab.experiments.interpreters import Worker, free_threaded, other_builds
from parlab.experiments.runners import run_together, split
from parlab.presentation import gil_word
from parlab.workloads import distance, tasks

LECTURE = "006_python_without_the_gil"
HERE = f"{__name__}:"
NOT_FREE_THREADED = ("this interpreter is not a free-threaded build: its GIL cannot be "
                     "switched off (a 3.13t, 3.14t or 3.15t interpreter runs this, e.g. from "
                     "scripts/python-ft.sh)")
# The threads of the race may miss each other on a busy machine: tries before
# concluding that nothing was lost.
RACE_ATTEMPTS = 10


def gil_settings() -> list[bool]:
    """The GIL settings this interpreter can run: off and on where free-threaded."""
    return [False, True] if free_threaded() else [True]


def gil_label(gil: bool) -> str:
    return "GIL on (PYTHON_GIL=1)" if gil and free_threaded() else "GIL on" if gil else "GIL off"


@contextlib.contextmanager
def workers(settings: list[bool]):
    """One worker of this interpreter per GIL setting (the build's own where it
    has no choice), by setting."""
    with contextlib.ExitStack() as stack:
        yield {gil: stack.enter_context(Worker(gil=gil if free_threaded() else None))
               for gil in settings}


# ------------------------------------------------------ what the workers run

def compute_serial(tasks_: int, iterations: int) -> list[float]:
    """The lecture's pure-Python compute loop, ``tasks_`` times in a row."""
    return [tasks.compute_loop(iterations) for _ in range(tasks_)]


def compute_threads(tasks_: int, iterations: int) -> list[float]:
    """The same loops, one thread each, started together."""
    return run_together([functools.partial(tasks.compute_loop, iterations)] * tasks_)


@functools.cache
def points(m: int, dim: int) -> list[list[float]]:
    """The points of :func:`matrix_sum`, made once per process (not timed)."""
    return distance.random_dataset(m, dim)


def matrix_sum(m: int, dim: int) -> float:
    """Lecture 0's pure-Python distance matrix of ``m`` points in ``dim``
    dimensions, summed: one number comes back through the pipe."""
    return math.fsum(map(math.fsum, distance.distance_matrix(points(m, dim))))


def kernel_serial(tasks_: int, iterations: int) -> list[float]:
    """``parlab.cpu_work`` (the same loop in C, GIL released), ``tasks_`` times in a row."""
    return [parlab.cpu_work(iterations) for _ in range(tasks_)]


def kernel_threads(tasks_: int, iterations: int) -> list[float]:
    """The same calls, one thread each, started together."""
    return run_together([functools.partial(parlab.cpu_work, iterations)] * tasks_)


def shared_increments(threads: int, total: int, locked: bool) -> int:
    """``threads`` threads share ``total`` increments of one list slot, each a
    load-then-store (``slot[0] = slot[0] + 1``), under a ``threading.Lock``
    or not; the final count."""
    slot, lock = [0], threading.Lock()
    extra = (lock,) if locked else ()
    target = tasks.add_one_each_locked if locked else tasks.add_one_each
    run_together([functools.partial(target, slot, k, *extra) for k in split(total, threads)])
    return slot[0]


def traced_calls(iterations: int, release_gil: bool) -> dict:
    """Two ``cpu_work`` calls in two threads at once, traced: each call's work
    interval (ns), and what held calls mean here."""
    with parlab.trace() as tr:
        run_together([functools.partial(parlab.cpu_work, iterations,
                                        release_gil=release_gil)] * 2)
    ev = tr.events
    return {"calls": [[int(a), int(b)] for a, b in zip(ev.work_start_ns, ev.work_end_ns)],
            "held_mode": parlab.info()["held_mode"]}


def python_beside_held(iterations: int) -> dict:
    """A held ``cpu_work`` call in one thread while another runs a pure-Python
    loop: the call's work interval, and the times (ns) at which the loop made
    progress."""
    done = threading.Event()
    stamps: list[int] = []

    def python_loop() -> None:
        while not done.is_set():
            tasks.compute_loop(1_000)
            stamps.append(time.perf_counter_ns())

    def held_call() -> None:
        try:
            parlab.cpu_work(iterations, release_gil=False)
        finally:
            done.set()

    with parlab.trace() as tr:
        run_together([held_call, python_loop])
    ev = tr.events
    return {"call": [int(ev.work_start_ns[0]), int(ev.work_end_ns[0])], "stamps": stamps,
            "held_mode": parlab.info()["held_mode"]}


def _overlap_ns(calls: list[list[int]]) -> int:
    (a0, a1), (b0, b1) = calls
    return max(0, min(a1, b1) - max(a0, b0))


def _inside(stamps: list[int], call: list[int]) -> int:
    return sum(call[0] < t < call[1] for t in stamps)


# ---------------------------------------------------------------- L6.1

@experiment("L6.1", title="Pure-Python threads with the GIL off and on",
            lecture=LECTURE,
            shows="On a free-threaded interpreter pure-Python computing threads run in "
                  "parallel; switched back on (PYTHON_GIL=1), the GIL makes them take turns "
                  "again, as in lecture 004.",
            sizes={"tiny": dict(iterations=20_000), "quick": dict(iterations=1_500_000),
                   "full": dict(iterations=6_000_000)},
            timer=("one call into a worker process of this interpreter (GIL off or on) "
                   "running the pure-Python loops, serially or one thread each, and sending "
                   "the results back: microseconds of messaging beside the loops; the "
                   "workers are started before timing"))
def threads_gil_off_and_on(ctx: Context) -> Result:
    k, n = max(2, ctx.cores), ctx.params["iterations"]
    want = [tasks.compute_loop(n)] * k
    settings = gil_settings()
    with workers(settings) as w:
        plans = []
        for gil in settings:
            serial = ctx.plan(f"{k} loops in a row, {gil_label(gil)}",
                              functools.partial(w[gil].call, HERE + "compute_serial", k, n),
                              backend="serial", check=want.__eq__, baseline=not gil)
            plans += [serial, ctx.plan(f"{k} threads, {gil_label(gil)}",
                                       functools.partial(w[gil].call, HERE + "compute_threads",
                                                         k, n),
                                       backend="threading.Thread", workers=k, check=want.__eq__,
                                       speedup_over=serial)]
        if not free_threaded():  # the pair of the no-speedup lesson: a released kernel
            kernel = [parlab.cpu_work(n)] * k
            plans += [ctx.plan(f"{k} cpu_work calls {how}, released",
                               functools.partial(w[True].call, HERE + fn, k, n),
                               backend=backend, workers=count, release_gil=True,
                               check=kernel.__eq__)
                      for how, fn, backend, count in (
                          ("in a row", "kernel_serial", "serial", 1),
                          ("in threads", "kernel_threads", "threading.Thread", k))]
        v = ctx.compare(*plans)
        if free_threaded():
            off_serial, off_threads, on_serial, on_threads = v
            can = judging.speedup(ctx, "Without a GIL, pure-Python computing threads speed up",
                                  off_threads, off_serial)
        else:
            on_serial, on_threads, c_serial, c_threads = v
            judging.skipped(ctx, "Without a GIL, pure-Python computing threads speed up",
                            NOT_FREE_THREADED)
            can = judging.speedup(ctx, "Control: threads speed up cpu_work when it releases "
                                       "the GIL", c_threads, c_serial, k)
        judging.no_speedup(ctx, f"With the {gil_label(True)}, the same threads get no speedup",
                           on_threads, on_serial, can)
        return ctx.result()


# ---------------------------------------------------------------- L6.2

@experiment("L6.2", title="The pure-Python race returns without a GIL; a Lock fixes it",
            lecture=LECTURE,
            shows="slot[0] += 1 from several threads loses updates on a free-threaded "
                  "interpreter with its GIL off (with the GIL, CPython 3.10 and later never "
                  "switches threads inside it); a threading.Lock around it makes the count "
                  "exact again.",
            sizes={"tiny": dict(increments=200_000), "quick": dict(increments=1_000_000),
                   "full": dict(increments=2_000_000)},
            timer=("one call into a worker process running the threads that share the "
                   "increments, started and joined inside the run; the workers are started "
                   "before timing"))
def race_returns(ctx: Context) -> Result:
    k, n = max(2, ctx.cores), ctx.params["increments"]
    total = k * n
    settings = gil_settings()
    lossy = "at most the total: updates may be lost, never invented"
    with workers(settings) as w:
        plans = []
        for gil in settings:
            for locked in (False, True):
                plans.append(ctx.plan(
                    f"slot[0] += 1, {k} threads x {n:,}{', with a Lock' if locked else ''}, "
                    f"{gil_label(gil)}",
                    functools.partial(w[gil].call, HERE + "shared_increments", k, total, locked),
                    backend="threading.Thread", workers=k,
                    check=total.__eq__ if locked else lambda c: 0 < c <= total,
                    expected=f"exactly {total:,}" if locked else lossy))
        variants = dict(zip(((gil, locked) for gil in settings for locked in (False, True)),
                            ctx.compare(*plans)))
        count, attempt = (variants[False, False].output, 1) if False in w else (None, 0)
        while count == total and attempt < RACE_ATTEMPTS:
            count = w[False].call(HERE + "shared_increments", k, total, False)
            attempt += 1
        ctx.extras["counts"] = {v.name: (v.output, total) for v in variants.values()}
        lost = "Without a GIL, slot[0] += 1 from several threads loses updates"
        if count is None:
            judging.skipped(ctx, lost, NOT_FREE_THREADED)
        elif ctx.cores < 2:
            judging.skipped(ctx, lost, "only 1 core: the threads take turns")
        else:
            judging.fact(ctx, lost, count < total,
                         f"lost {total - count:,} of {total:,} updates (run {attempt})")
        judging.fact(ctx, f"With the {gil_label(True)}, the same threads lose nothing",
                     variants[True, False].output == total,
                     f"count {variants[True, False].output:,} of {total:,}")
        locked = [v for (_, is_locked), v in variants.items() if is_locked]
        judging.fact(ctx, "A threading.Lock around the increment makes the count exact"
                          + (", with the GIL off and on" if len(locked) > 1 else ""),
                     all(v.correct for v in locked),
                     "; ".join(f"{v.output:,} of {total:,} ({v.name.rsplit(', ', 1)[1]})"
                               for v in locked))
        return ctx.result(figure="counts_figure")


# ---------------------------------------------------------------- L6.3

@experiment("L6.3", title="What release_gil=False means without a GIL",
            lecture=LECTURE,
            shows="Without a GIL parlab emulates held calls: two of them still never overlap "
                  "(its own lock), but Python threads now run beside them; released calls "
                  "overlap. With the GIL on (PYTHON_GIL=1) held means the real GIL again.",
            sizes={"tiny": dict(iterations=2_000_000), "quick": dict(iterations=20_000_000),
                   "full": dict(iterations=50_000_000)},
            timer=("one call into a worker process running two traced cpu_work calls (or a "
                   "held call beside a Python loop) in threads started together; the workers"
                   " are started before timing"))
def held_without_gil(ctx: Context) -> Result:
    n = ctx.params["iterations"]
    settings = gil_settings()

    def intervals_ok(out) -> bool:
        return len(out["calls"]) == 2 and all(a < b for a, b in out["calls"])

    with workers(settings) as w:
        plans = []
        for gil in settings:
            plans += [ctx.plan(f"2 threads, cpu_work {gil_word(release)}, {gil_label(gil)}",
                               functools.partial(w[gil].call, HERE + "traced_calls", n, release),
                               backend="threading.Thread", workers=2, release_gil=release,
                               check=intervals_ok, expected="two traced calls")
                      for release in (False, True)]
            plans.append(ctx.plan(f"held cpu_work beside a Python thread, {gil_label(gil)}",
                                  functools.partial(w[gil].call, HERE + "python_beside_held", n),
                                  backend="threading.Thread", workers=2, release_gil=False,
                                  check=lambda out: out["call"][0] < out["call"][1] and
                                  bool(out["stamps"]), expected="a traced call, a loop that ran"))
        v = iter(ctx.compare(*plans, versus_first=True))
        by_gil = {gil: dict(zip(("held", "released", "beside"), (next(v), next(v), next(v))))
                  for gil in settings}
        for gil in settings:
            held, released, beside = (by_gil[gil][key].output for key in ("held", "released",
                                                                          "beside"))
            where = gil_label(gil)
            judging.fact(ctx, f"{where}: two held calls never overlap (held mode "
                              f"\"{held['held_mode']}\")", _overlap_ns(held["calls"]) == 0,
                         f"overlap {_overlap_ns(held['calls']) / 1e6:.2f} ms")
            overlap_ms = _overlap_ns(released["calls"]) / 1e6
            shorter_ms = min(b - a for a, b in released["calls"]) / 1e6
            if ctx.cores < 2:
                judging.skipped(ctx, f"{where}: two released calls overlap",
                                "only 1 core: nothing can run in parallel here")
            else:
                judging.timing_fact(ctx, f"{where}: two released calls overlap",
                               overlap_ms >= 0.5 * shorter_ms,
                               f"overlap {overlap_ms:.1f} ms of {shorter_ms:.1f} ms (needs half)",
                               by_gil[gil]["released"])
            inside = _inside(beside["stamps"], beside["call"])
            progress = (f"the Python thread made progress {inside} times during the held call "
                        f"(of {len(beside['stamps'])}); held mode \"{beside['held_mode']}\"")
            if gil:
                judging.fact(ctx, f"{where}: a held call stops every Python thread (the real GIL)",
                             inside == 0 and beside["held_mode"] == "gil", progress)
            elif ctx.cores < 2:
                judging.skipped(ctx, f"{where}: Python threads run beside a held call",
                                "only 1 core: the threads take turns")
            else:
                judging.fact(ctx, f"{where}: Python threads run beside a held call",
                             inside > 0 and beside["held_mode"] == "emulated", progress)
        if not free_threaded():
            judging.skipped(ctx, "GIL off: Python threads run beside a held call",
                            NOT_FREE_THREADED)
        return ctx.result()


# ---------------------------------------------------------------- L6.4

def minor_version(version: str) -> str:
    """"3.13" of "3.13.15": builds of one minor version run the same bytecode."""
    return version.rsplit(".", 1)[0]


def differences(normal: dict, free: dict) -> str:
    """How two builds' versions and build options (interpreters.describe)
    differ, in words; empty when they are the same release built alike."""
    said = []
    if minor_version(normal["version"]) != minor_version(free["version"]):
        said.append(f"Python {normal['version']} against {free['version']}")
    for option in sorted(set(normal["options"]) ^ set(free["options"])):
        where = "normal" if option in normal["options"] else "free-threaded"
        said.append(f"{option} only in the {where} build")
    return "; ".join(said)


@experiment("L6.4", title="The price: one thread of pure Python on each build",
            lecture=LECTURE,
            shows="Free threading has a single-thread price, measured here and named with "
                  "the interpreters it was measured on: one thread of pure Python on the "
                  "free-threaded build against the normal one of the same version, built the "
                  "same way; switching the GIL back on does not win it back. Its size depends "
                  "on the release (CPython's documents: about 40% on 3.13t; 5-10% on 3.14t, "
                  "whose specializing adaptive interpreter is enabled in the free-threaded "
                  "build, \"What's New in Python 3.14\") and on the code: lecture 0's "
                  "distance matrix (calls, a generator, sum and zip) against the compute "
                  "loop's float arithmetic. The "
                  "other build to compare with comes from PARLAB_PYTHONS (reproduce --python "
                  "sets it; scripts/python-ft.sh --twin builds one).",
            sizes={"tiny": dict(iterations=20_000, m=12, dim=10),
                   "quick": dict(iterations=1_500_000, m=120, dim=50),
                   "full": dict(iterations=6_000_000, m=250, dim=100)},
            timer=("one call into a worker process of each interpreter running the pure-"
                   "Python code in one thread (the points of the matrix made before, in "
                   "each worker); the workers are started before timing"))
def single_thread_price(ctx: Context) -> Result:
    p = ctx.params
    # What each worker runs, its arguments, and the check of its output.
    matrix = matrix_sum(p["m"], p["dim"])
    work = {"compute loop": (compute_serial, (1, p["iterations"]),
                             [tasks.compute_loop(p["iterations"])].__eq__),
            "distance matrix": (matrix_sum, (p["m"], p["dim"]),
                                # sum() of floats rounds differently since 3.12
                                functools.partial(math.isclose, matrix, rel_tol=1e-12))}
    with contextlib.ExitStack() as stack:
        found = [stack.enter_context(Worker(gil=gil if free_threaded() else None))
                 for gil in gil_settings()]
        # The other build to compare with: of this version where one is named.
        others = other_builds()
        if others:
            mine = minor_version(parlab.info()["python"])
            python, about = min(others, key=lambda o: minor_version(o[1]["version"]) != mine)
            other = about["free_threaded"]
            found += [stack.enter_context(Worker(python, gil=gil if other else None))
                      for gil in ([False, True] if other else [None])]
        build = {(w.about["free_threaded"], w.about["gil_enabled"]): w for w in found}

        def name(what: str, w: Worker) -> str:
            a = w.about
            gil = (", GIL off" if not a["gil_enabled"] else ", GIL on (PYTHON_GIL=1)"
                   if a["free_threaded"] else "")
            kind = "free-threaded" if a["free_threaded"] else "normal"
            return f"{what}, one thread, {kind} build, Python {a['version']}{gil}"

        plans = {}
        for what, (function, args, same) in work.items():
            # Speedups of each code over its first build (the normal one, if any).
            first = None
            for key, w in sorted(build.items()):
                plans[what, key] = ctx.plan(
                    name(what, w), functools.partial(w.call, HERE + function.__name__, *args),
                    backend="serial", check=same, speedup_over=first)
                first = first or plans[what, key]
            first.speedup_over = first
            # The same code in this process: what a worker's round trip adds.
            plans[what, "here"] = ctx.plan(
                f"{what}, one thread, in this process (no worker)",
                functools.partial(function, *args), backend="serial", check=same,
                speedup_over=first)
        measured = dict(zip(plans, ctx.compare(*plans.values())))
        normal, ft_off, ft_on = (measured.get(("distance matrix", k)) for k in (
            (False, True), (True, False), (True, True)))
        price = ("One thread of pure Python pays a price on the free-threaded build, measured "
                 "against the normal one of the same version and named with both interpreters")
        if normal is None or ft_off is None:
            missing = "normal" if normal is None else "free-threaded"
            judging.skipped(ctx, price, f"no {missing} build to compare with: name one in "
                                        "PARLAB_PYTHONS, or run reproduce --python PATH")
        elif unlike := differences(build[False, True].about, build[True, False].about):
            judging.skipped(ctx, price, f"the two builds differ in more than the GIL "
                                        f"({unlike}): the comparison would measure that too "
                                        "(see the rows)")
        else:
            judging.measured(ctx, price, ft_off, normal, what=(
                f" the time on CPython {build[True, False].about['version']}t against "
                f"{build[False, True].about['version']} with the GIL, the distance matrix"))
        back = "Switching the GIL back on (PYTHON_GIL=1) does not make one thread faster: the " \
               "build pays the price, not the missing GIL"
        if ft_off is None:
            judging.skipped(ctx, back, "no free-threaded build to compare with")
        else:
            judging.at_most(ctx, back, ft_off, ft_on, judging.GIL_BACK_ON_GAIN)
        return ctx.result()
