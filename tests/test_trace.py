"""parlab.trace(): per-call GIL events, judged from the recorded events only."""
import os
import signal
import threading
import time

import matplotlib
import pytest

import parlab
from conftest import run_threaded

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
    started = threading.Event()

    def waiter():
        started.set()
        parlab.io_wait(0.3, release_gil=True)

    with parlab.trace() as tr:
        t = threading.Thread(target=waiter)
        t.start()
        started.wait()
        time.sleep(0.03)
        parlab.io_wait(0.1, release_gil=False)
        t.join()
    ev = tr.events.set_index("gil_held")
    released = ev.loc[False]
    assert released.gil_wait_s > 0
    assert released.n_waits >= 1
    waits = tr.waits
    assert len(waits) == released.n_waits
    # The longest wait happened while the held call ran, and lasted a good part of it.
    held = ev.loc[True]
    longest = waits.loc[waits.wait_s.idxmax()]
    assert held.work_start_ns <= longest.end_ns <= held.end_ns + 5_000_000
    assert longest.wait_s > 0.5 * held.work_s


def test_cpu_time_separates_computing_from_waiting():
    with parlab.trace(cpu_time=True) as tr:
        parlab.cpu_work(2_000_000)
        parlab.io_wait(0.1)
    work, wait = tr.events.itertuples()
    assert 0.5 * work.work_s < work.cpu_s <= 1.05 * work.work_s + 1e-3
    assert wait.cpu_s < 0.5 * wait.work_s


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


def test_sixteen_threads_lose_nothing_when_capacity_suffices():
    calls = 1000

    def body(_):
        for _ in range(calls):
            parlab.count_hits(1, seed=1)

    tr = traced(body, 16, capacity=16 * calls)
    s = tr.summary()
    assert s["dropped"] == 0
    assert s["calls"] == 16 * calls
    per_thread = tr.events.groupby("thread").size()
    assert len(per_thread) == 16 and (per_thread == calls).all()
    assert tr.events.call.is_unique


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


def test_interrupted_call_is_recorded_as_not_completed():
    old = signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signal.SIGINT))
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
            pass
        for release in (True, False):
            parlab.cpu_work(1000, release_gil=release)

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
