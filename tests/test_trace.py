"""parlab.trace(): per-call GIL events, judged from the recorded events only."""
import os
import signal
import threading
import time

import matplotlib
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import parlab
from conftest import run_threaded

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Under pytest-run-parallel: a trace records every thread's calls and only one
# records at a time, so a test that records must run alone.
pytestmark = [pytest.mark.sanitize, pytest.mark.tsan,
              pytest.mark.thread_unsafe(reason="parlab.trace is one per process: the copies "
                                               "of a test in other threads would record too")]
HELD_KEEPS_THE_GIL = parlab.info()["held_mode"] == "gil"
REQUIRED_COLUMNS = {"kernel", "thread", "start_ns", "end_ns", "work_s", "gil_wait_s", "gil_held"}


def traced(fn, n_threads, capacity=100_000, cpu_time=False):
    with parlab.trace(capacity, cpu_time=cpu_time) as tr:
        run_threaded(fn, n_threads)
    return tr


@pytest.mark.parametrize("release", [True, False])
def test_io_wait_overlap_follows_the_gil(release):
    tr = traced(lambda _: parlab.io_wait(0.2, release_gil=release), 2)
    s = tr.summary()
    assert s["calls"] == 2 and s["dropped"] == 0
    if release:
        assert s["parallelism"] > 1.5
    else:
        assert s["parallelism"] <= 1.05
        ev = tr.events.sort_values("work_start_ns")
        first, second = ev.iloc[0], ev.iloc[1]
        assert second.work_start_ns >= first.work_end_ns
    assert set(tr.events.gil_held) == {not release}


def test_gil_wait_recorded_when_a_held_call_blocks_a_released_one():
    # A released call in a worker thread waits for the GIL only at its end:
    # here, until the main thread's held call lets go.
    started = threading.Event()

    def waiter():
        started.set()
        parlab.io_wait(0.05, release_gil=True)

    with parlab.trace() as tr:
        t = threading.Thread(target=waiter)
        t.start()
        started.wait()
        parlab.io_wait(0.3, release_gil=False)
        t.join()
    ev = tr.events.set_index("gil_held")
    released, held = ev.loc[False], ev.loc[True]
    assert released.n_waits == 0 and not (tr.waits.call == released.call).any()
    if HELD_KEEPS_THE_GIL:
        # The wait began when the work ended and lasted until the held call let go.
        assert released.reacquired_ns >= held.work_end_ns
        # (asked for the GIL a moment after the work ended)
        assert released.gil_wait_s <= (released.reacquired_ns - released.work_end_ns) * 1e-9
        assert released.gil_wait_s > 0.5 * (held.work_end_ns - released.work_end_ns) * 1e-9


def test_cpu_time_separates_computing_from_waiting():
    # Judged against the thread's CPU clock read around each call, which a
    # busy machine slows no more than the kernel's own reading; a share of
    # wall time would depend on how often the OS let the thread run.
    with parlab.trace(cpu_time=True) as tr:
        t0 = time.thread_time()
        parlab.cpu_work(2_000_000)
        t1 = time.thread_time()
        parlab.io_wait(0.1)
        t2 = time.thread_time()
    work, wait = tr.events.itertuples()
    # The kernel's reading lies inside ours, short of it by the call's
    # argument parsing and return only.
    assert t1 - t0 - 2e-3 <= work.cpu_s <= t1 - t0
    assert t2 - t1 - 2e-3 <= wait.cpu_s <= t2 - t1
    # Sleeping takes (nearly) no CPU time, however long the wait lasted.
    assert wait.work_s >= 0.1
    assert wait.cpu_s < 0.1 * wait.work_s


def test_cpu_parallelism_never_exceeds_the_cores():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = 2 * cores  # more threads than cores: wall-time parallelism overstates
    tr = traced(lambda _: parlab.cpu_work(1_000_000), threads, cpu_time=True)
    s = tr.summary()
    assert s["cpu_parallelism"] <= cores * 1.05
    assert s["cpu_parallelism"] <= s["parallelism"] * 1.05


def test_cpu_time_is_opt_in():
    with parlab.trace() as tr:
        parlab.cpu_work(1000)
    assert tr.events.cpu_s.isna().all()
    assert tr.summary()["cpu_parallelism"] != tr.summary()["cpu_parallelism"]  # NaN
    assert "CPU" not in tr.describe()


def test_full_buffer_counts_dropped_records():
    with parlab.trace(capacity=10) as tr:
        for _ in range(100):
            parlab.cpu_work(10)
    assert tr.summary()["dropped"] == 90
    assert len(tr.events) == 10


@pytest.mark.parametrize("release", [False, True])
def test_sixteen_threads_lose_nothing_when_capacity_suffices(release):
    # A held call writes exactly one record. A released one also writes a
    # record per wait for the GIL at a checkpoint (a call descheduled past the
    # check interval, as on a busy machine): count_hits(1) is one chunk, so at
    # most one checkpoint.
    calls = 1000
    records_per_call = 2 if release else 1

    def body(_):
        for _ in range(calls):
            parlab.count_hits(1, seed=1, release_gil=release)

    tr = traced(body, 16, capacity=16 * calls * records_per_call)
    s = tr.summary()
    assert s["dropped"] == 0
    assert s["calls"] == 16 * calls
    per_thread = tr.events.groupby("thread").size()
    assert len(per_thread) == 16 and (per_thread == calls).all()
    assert tr.events.call.is_unique
    assert len(tr.waits) == tr.events.n_waits.sum()
    assert (tr.events.n_waits <= records_per_call - 1).all()


def test_stopping_while_threads_record_returns_whole_records():
    """Traces stopped while other threads go on making traced calls: each
    record returned is whole (a call ending as the trace stops is in it
    completely or not at all). Under ThreadSanitizer (scripts/ci-tsan.sh) any
    record read without its writing happening before is a reported race."""
    stop = threading.Event()

    def body():
        while not stop.is_set():
            parlab.count_hits(1, seed=1)

    threads = [threading.Thread(target=body) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(20):
            with parlab.trace() as tr:
                time.sleep(0.002)
            ev = tr.events
            # A row still being written shows as zeros: kernel 0 is cdist.
            assert (ev.kernel == "count_hits").all()
            assert (ev.thread != 0).all() and (ev.end_ns >= ev.start_ns).all()
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_events_columns_and_clock():
    before = time.perf_counter_ns()
    with parlab.trace() as tr:
        parlab.cdist([[0.0, 0.0]], [[3.0, 4.0]], release_gil=False)
        parlab.estimate_pi(1000, seed=1)
    after = time.perf_counter_ns()
    ev = tr.events
    assert REQUIRED_COLUMNS <= set(ev.columns)
    assert list(ev.kernel) == ["cdist", "estimate_pi"]
    assert list(ev.gil_held) == [True, False]
    assert (ev.start_ns >= before).all() and (ev.end_ns <= after).all()
    assert (ev.start_ns <= ev.work_start_ns).all() and (ev.work_end_ns <= ev.end_ns).all()
    assert (ev.work_s >= 0).all() and ev.completed.all()
    assert ev.released_ns.isna().tolist() == [True, False]


def test_calls_outside_the_block_are_not_recorded():
    parlab.cpu_work(10)
    with parlab.trace() as tr:
        parlab.cpu_work(10)
    parlab.cpu_work(10)
    assert len(tr.events) == 1


def test_spans_join_the_timeline():
    with parlab.trace() as tr:
        with tr.span("pure python"):
            sum(range(10_000))
        parlab.io_wait(0.01)
    ev = tr.events
    assert list(ev.kind) == ["span", "kernel"]
    assert ev.kernel.iloc[0] == "pure python"
    assert tr.summary()["spans"] == 1


def test_one_trace_at_a_time_and_results_after_the_block():
    with parlab.trace() as tr:
        with pytest.raises(RuntimeError, match="already"):
            with parlab.trace():
                pass
        with pytest.raises(RuntimeError, match="with"):
            tr.events
    assert len(tr.events) == 0


@pytest.mark.parametrize("capacity, exc", [(0, ValueError), (-5, ValueError),
                                           (2**40, ValueError), (1.5, TypeError),
                                           (True, TypeError)])
def test_bad_capacity(capacity, exc):
    with pytest.raises(exc, match="capacity"):
        with parlab.trace(capacity):
            pass


@pytest.mark.parametrize("cpu_time", [1, None, "yes"])
def test_bad_cpu_time(cpu_time):
    with pytest.raises(TypeError, match="cpu_time"):
        parlab.trace(cpu_time=cpu_time)


@pytest.mark.thread_unsafe(reason="signals: only the main thread may set handlers and gets them")
def test_interrupted_call_is_recorded_as_not_completed():
    def interrupt(signum, frame):
        # Raised here, not by a SIGINT sent to this process: where SIGINT was
        # ignored when Python started (a background job of a shell script),
        # Python installs no handler for it and the SIGINT would be lost.
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with parlab.trace() as tr:
            with pytest.raises(KeyboardInterrupt):
                parlab.io_wait(5.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    ev = tr.events
    assert ev.completed.tolist() == [False]
    assert (ev.reacquired_ns >= ev.work_end_ns).all() and (ev.work_s > 0).all()


@pytest.mark.parametrize("n_threads", [2, 16])
def test_timeline_renders_one_row_per_thread(n_threads):
    def body(_):
        with tr.span("setup"):
            time.sleep(0.005)  # long enough to show beside the calls
        # A state gets its legend entry where a thread's bars of it add up to
        # MERGE_FRACTION of the axis. Held calls take turns, so the axis is at
        # least n_threads of them: a call of milliseconds stays a few percent
        # of it however slow the machine (or ThreadSanitizer) makes the
        # threads' start-up, where one of microseconds did not under TSan.
        for release in (True, False):
            parlab.cpu_work(100_000, release_gil=release)

    with parlab.trace() as tr:
        run_threaded(body, n_threads)
    ax = parlab.plot.timeline(tr)
    try:
        assert len(ax.get_yticks()) == n_threads
        labels = {t.get_text() for t in ax.get_legend().get_texts()}
        assert {"GIL released (parlab kernel)", "GIL held (parlab kernel)", "Python span"} <= labels
        ax.figure.canvas.draw()
    finally:
        plt.close(ax.figure)


def test_timeline_thins_thousands_of_calls():
    def body(_):
        for _ in range(2000):
            parlab.cpu_work(50)

    with parlab.trace() as tr:
        run_threaded(body, 2)
    ax = parlab.plot.timeline(tr)
    try:
        rectangles = sum(len(c.get_paths()) for c in ax.collections)
        assert rectangles < 1000  # 4000 calls, merged into far fewer bars
    finally:
        plt.close(ax.figure)


# -- hypothesis ----------------------------------------------------------------

def _cdist() -> None:
    parlab.cdist([[0.0]], [[1.0]], release_gil=False)


# One held call of each kernel: a held call writes exactly one record.
HELD_CALLS = {
    "cdist": _cdist,
    "count_hits": lambda: parlab.count_hits(3, seed=0, release_gil=False),
    "estimate_pi": lambda: parlab.estimate_pi(3, seed=0, release_gil=False),
    "cpu_work": lambda: parlab.cpu_work(5, release_gil=False),
    "io_wait": lambda: parlab.io_wait(0.0, release_gil=False),
    "Counter.increment": lambda: parlab.Counter().increment(2, release_gil=False),
}


@given(capacity=st.integers(1, 40), before=st.lists(st.sampled_from(sorted(HELD_CALLS))),
       inside=st.lists(st.sampled_from(sorted(HELD_CALLS)), max_size=60),
       nested=st.booleans())
def test_trace_records_the_calls_inside_hypothesis(capacity, before, inside, nested):
    for name in before:
        HELD_CALLS[name]()
    with parlab.trace(capacity) as tr:
        for i, name in enumerate(inside):
            HELD_CALLS[name]()
            if nested and i == len(inside) // 2:
                with pytest.raises(RuntimeError, match="already"):
                    parlab.trace().__enter__()
    kept = min(capacity, len(inside))
    assert tr.events.kernel.tolist() == inside[:kept]
    assert tr.summary()["dropped"] == len(inside) - kept
    assert tr.events.call.tolist() == sorted(tr.events.call)
    assert len(tr.waits) == 0


CAPACITIES = st.one_of(st.integers(-2**70, 0), st.integers(2**40, 2**70),  # out of range
                       st.integers(1, 1000), st.booleans(), st.none(), st.floats(),
                       st.text(max_size=3), st.just(np.int64(10)))


@given(CAPACITIES)
def test_trace_capacity_domain(capacity):
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        with pytest.raises(TypeError, match="capacity"):
            parlab.trace(capacity)
    elif not 1 <= capacity <= 1000:
        # Past int64, an OverflowError, as for every count.
        exc = ValueError if -2**63 <= capacity < 2**63 else (ValueError, OverflowError)
        with pytest.raises(exc, match="capacity"):
            with parlab.trace(capacity):
                pass
    else:
        with parlab.trace(capacity) as tr:
            parlab.cpu_work(1, release_gil=False)
        assert tr.events.kernel.tolist() == ["cpu_work"]
